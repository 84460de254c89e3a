//! Forecasting on ETTh1 from `shared/data` (skipped when absent) and on small tables: the
//! Informer split, training-only standardisation and its round trip, the persistence baseline.

use std::path::Path;

use seqrnn::data::table::Table;
use seqrnn::forecast::model::{Arch, Forecaster, ForecasterConfig};
use seqrnn::forecast::{evaluate, forecast_original, ColumnSpec, Mode, Series, Split};

use crate::common;

#[test]
fn etth1_informer_split_and_standardisation() {
    let Some(etth1) = common::shared("data/ett/ETTh1.csv") else {
        return;
    };
    let t = Table::load(&etth1).unwrap();
    assert_eq!(t.rows, 17_420);
    assert_eq!(
        t.columns,
        ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    );
    let r = Split::Informer.ranges(t.rows, 96).unwrap();
    assert_eq!(
        (r.train, r.valid.clone(), r.test.clone()),
        (0..8640, 8544..11520, 11424..14400)
    );
    // Windows whose 96 + 24 rows stay inside each split: every target row of val/test is used.
    assert_eq!(Series::windows(r.test.clone(), 96, 24).len(), 2880 - 24 + 1);
    let spec = ColumnSpec::choose(&t, Mode::M, None, None, None, 0..8640).unwrap();
    assert_eq!(spec.targets.len(), 7);
    assert_eq!(spec.date_column.as_deref(), Some("date"));
    let s = Series::new(&t, &spec).unwrap();
    // Training rows are standardised to mean 0, std 1; later rows are not refitted.
    for k in 0..7 {
        let col: Vec<f64> = (0..8640).map(|r| s.z[r * 7 + k] as f64).collect();
        let mean = col.iter().sum::<f64>() / 8640.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8640.0;
        assert!(
            mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
            "column {k}: {mean} {var}"
        );
        for r in [0, 9000, 17_419] {
            let back = spec.scaler.undo(k, s.z[r * 7 + k] as f64);
            let orig = t.get(r, k) as f64;
            assert!((back - orig).abs() <= 1e-5 * (1.0 + orig.abs()), "{r},{k}");
        }
    }
}

#[test]
fn persistence_is_exact_on_a_constant_series_and_metrics_use_both_scales() {
    let mut text = String::from("x,y\n");
    for r in 0..60 {
        text += &format!("{},{}\n", r % 5, 7.0);
    }
    let t = Table::parse(&text, Path::new("t.csv")).unwrap();
    let spec = ColumnSpec::choose(&t, Mode::S, None, Some(&["y".into()]), None, 0..40).unwrap();
    let s = Series::new(&t, &spec).unwrap();
    let m = Forecaster::new(ForecasterConfig {
        inputs: 1,
        outputs: 1,
        lookback: 4,
        horizon: 3,
        hidden: 3,
        ..ForecasterConfig::default()
    })
    .unwrap();
    let p = m.init_params(1).unwrap();
    let starts = Series::windows(40..60, 4, 3);
    let r = evaluate(&m, &p, &s, &spec.scaler, &starts).unwrap();
    assert_eq!(r.windows, 14);
    assert_eq!((r.persistence_mse, r.persistence_mae), (0.0, 0.0));
    // A constant column has std 1 after the guard, so both scales agree.
    assert!((r.mse - r.mse_original).abs() < 1e-9 && r.mse > 0.0);
}

/// The Informer split of a generated table of 14,420 rows: every test window is scored (more
/// than one evaluation batch, the last one partial), and MSE and MAE are means over all windows,
/// steps and columns, checked against each forecast compared with the table by hand; for both
/// architectures.
#[test]
fn informer_test_split_scores_every_window_step_and_column() {
    let rows = 14_420;
    let mut text = String::from("date,a,b\n");
    for r in 0..rows {
        text += &format!("d{r},{},{}\n", (r as f64 * 0.3).sin(), (r % 17) as f64);
    }
    let t = Table::parse(&text, Path::new("t.csv")).unwrap();
    let (l, k) = (8, 4);
    let r = Split::Informer.ranges(t.rows, l).unwrap();
    assert_eq!(r.test, 11_512..14_400);
    let starts = Series::windows(r.test.clone(), l, k);
    // Target rows 11520..14400 (2880), windows whose 4 steps fit: 2880 − 4 + 1.
    assert_eq!(starts.len(), 2877);
    assert_eq!((starts[0], starts[2876]), (11_512, 14_388));
    let spec = ColumnSpec::choose(&t, Mode::M, None, None, None, r.train.clone()).unwrap();
    let s = Series::new(&t, &spec).unwrap();
    let cols = [t.column("a").unwrap(), t.column("b").unwrap()];
    for (arch, segment) in [(Arch::Rnn, 0), (Arch::SegRnn, 4)] {
        let model = Forecaster::new(ForecasterConfig {
            inputs: 2,
            outputs: 2,
            lookback: l,
            horizon: k,
            hidden: 4,
            arch,
            segment,
            ..ForecasterConfig::default()
        })
        .unwrap();
        let p = model.init_params(7).unwrap();
        let m = evaluate(&model, &p, &s, &spec.scaler, &starts).unwrap();
        assert_eq!(m.windows, 2877);
        let fc = forecast_original(&model, &p, &s, &spec.scaler, &starts).unwrap();
        assert_eq!(fc.len(), 2877 * k * 2);
        let (mut se, mut ae) = (0.0, 0.0);
        for (w, &st) in starts.iter().enumerate() {
            for step in 0..k {
                for (c, &col) in cols.iter().enumerate() {
                    let truth = t.get(st + l + step, col) as f64;
                    let e = (fc[(w * k + step) * 2 + c] - truth) / spec.scaler.std[c];
                    se += e * e;
                    ae += e.abs();
                }
            }
        }
        let n = (2877 * k * 2) as f64;
        let (mse, mae) = (se / n, ae / n);
        assert!(
            (m.mse - mse).abs() < 1e-4 * mse,
            "{arch:?}: {} vs {mse}",
            m.mse
        );
        assert!(
            (m.mae - mae).abs() < 1e-4 * mae,
            "{arch:?}: {} vs {mae}",
            m.mae
        );
    }
}
