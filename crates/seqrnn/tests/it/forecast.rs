//! Forecasting on ETTh1 from `shared/data` (skipped when absent) and on small tables: the
//! Informer split, training-only standardisation and its round trip, the persistence baseline.

use std::path::Path;

use seqrnn::data::table::Table;
use seqrnn::forecast::model::{Forecaster, ForecasterConfig};
use seqrnn::forecast::{evaluate, ColumnSpec, Mode, Series, Split};

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
