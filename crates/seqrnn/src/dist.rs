//! Data-parallel training across processes: the group of processes (ranks) that train one model
//! together, each with a full replica of the weights and its own rows of every batch.
//!
//! A [`Group`] is one process (the default, [`Group::single`]) or the ranks of an MPI job
//! started by `mpirun`/`srun` ([`Group::from_env`], with the `mpi` feature: Open MPI through the
//! `mpi` crate). The training loop ([`crate::train::fit()`]) sums the gradients of every step over
//! the group with one allreduce of the contiguous gradient block, so every rank takes the same
//! optimiser step; rank 0 alone writes the run folder.

use std::ops::Range;
use std::rc::Rc;

use crate::error::{Error, Result};

/// The processes training one model together.
///
/// Cloning is cheap: clones share the one communicator, and MPI is finalised when the last is
/// dropped.
#[derive(Clone)]
pub struct Group {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    mpi: Option<Rc<Mpi>>,
    #[cfg(not(feature = "mpi"))]
    _single: Rc<()>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::single()
    }
}

#[cfg(feature = "mpi")]
struct Mpi {
    world: mpi::topology::SimpleCommunicator,
    /// Receive buffer of [`Group::sum_f32`], allocated once.
    scratch: std::cell::RefCell<Vec<f32>>,
    /// Finalises MPI when dropped (after `world`).
    _universe: mpi::environment::Universe,
}

/// The rank and size an MPI launcher (`mpirun`, `srun`) gave this process, from its
/// environment; `None` when it was started on its own.
pub fn launched_rank() -> Option<(usize, usize)> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let rank = var("OMPI_COMM_WORLD_RANK")
        .or_else(|| var("PMIX_RANK"))
        .or_else(|| var("PMI_RANK"))?;
    let size = var("OMPI_COMM_WORLD_SIZE")
        .or_else(|| var("PMI_SIZE"))
        .or_else(|| var("SLURM_NTASKS"))
        .unwrap_or(1);
    Some((rank, size))
}

/// What a build without the `mpi` feature says when a launcher started it as one of several
/// ranks: each would train alone. (Compiled in every build, so that one test build checks it.)
#[cfg_attr(feature = "mpi", allow(dead_code))]
fn refuse_without_mpi(rank: usize, size: usize) -> Result<()> {
    if size > 1 {
        return Err(Error::Config(format!(
            "launched as rank {rank} of {size} by an MPI launcher, but this seqrnn was built without the `mpi` feature: every rank would train alone. Build it with `--features mpi` (docs/distributed.md)"
        )));
    }
    Ok(())
}

impl Group {
    /// One process on its own.
    pub fn single() -> Group {
        Group {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            mpi: None,
            #[cfg(not(feature = "mpi"))]
            _single: Rc::new(()),
        }
    }

    /// The group this process was launched in: the MPI job's ranks under `mpirun` or `srun`
    /// (initialising MPI), or [`Group::single`] when started on its own.
    ///
    /// # Errors
    /// [`Error::Config`] when a launcher started several ranks but this build has no `mpi`
    /// feature (each would train alone), or MPI cannot be initialised.
    pub fn from_env() -> Result<Group> {
        let Some((rank, size)) = launched_rank() else {
            return Ok(Group::single());
        };
        Self::init(rank, size)
    }

    #[cfg(not(feature = "mpi"))]
    fn init(rank: usize, size: usize) -> Result<Group> {
        refuse_without_mpi(rank, size)?;
        Ok(Group::single())
    }

    #[cfg(feature = "mpi")]
    fn init(_rank: usize, _size: usize) -> Result<Group> {
        use mpi::traits::Communicator;
        let universe = mpi::initialize().ok_or_else(|| {
            Error::Config("MPI could not be initialised (or was initialised twice)".into())
        })?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Group {
            rank,
            size,
            mpi: Some(Rc::new(Mpi {
                world,
                scratch: Default::default(),
                _universe: universe,
            })),
        })
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this process is rank 0, the one that writes files and prints progress.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Whether more than one process trains.
    pub fn is_distributed(&self) -> bool {
        self.size > 1
    }

    /// This rank's rows of a batch of `n` rows: contiguous, in rank order, the first `n mod
    /// size` ranks one row more.
    ///
    /// # Errors
    /// [`Error::Config`] when there are fewer rows than ranks.
    pub fn rows(&self, n: usize, what: &str) -> Result<Range<usize>> {
        shard_rows(n, self.rank, self.size, what)
    }

    /// `buf[i] = Σ_ranks buf[i]` on every rank (an allreduce). The sums arrive in a buffer
    /// kept from the previous call, which is then swapped with `buf`: no copy, no allocation
    /// once the sizes repeat.
    pub fn sum_f32(&self, buf: &mut Vec<f32>) {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mut out = m.scratch.borrow_mut();
            if out.len() != buf.len() {
                *out = vec![0.0; buf.len()];
            }
            m.world
                .all_reduce_into(&buf[..], &mut out[..], SystemOperation::sum());
            std::mem::swap(buf, &mut *out);
        }
        let _ = buf;
    }

    /// `buf[i] = Σ_ranks buf[i]` in double precision (losses, counts).
    pub fn sum_f64(&self, buf: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mut out = vec![0.0; buf.len()];
            m.world
                .all_reduce_into(&buf[..], &mut out[..], SystemOperation::sum());
            buf.copy_from_slice(&out);
        }
        let _ = buf;
    }

    /// The lowest rank where `flag` holds, on every rank; `None` when it holds nowhere.
    pub fn first_rank_where(&self, flag: bool) -> Option<usize> {
        let mine = if flag { self.rank as u64 } else { u64::MAX };
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mut out = 0u64;
            m.world
                .all_reduce_into(&mine, &mut out, SystemOperation::min());
            return (out != u64::MAX).then_some(out as usize);
        }
        (mine != u64::MAX).then_some(mine as usize)
    }

    /// `result` when no rank failed; otherwise the error of the lowest rank that failed on
    /// that rank, and [`Error::RankFailed`] naming it on every other (so that an error every
    /// rank meets is told once). Every rank must call it.
    pub fn agree<T>(&self, result: Result<T>) -> Result<T> {
        match self.first_rank_where(result.is_err()) {
            Some(rank) if rank != self.rank => Err(Error::RankFailed { rank }),
            _ => result,
        }
    }

    /// `error` on rank 0, [`Error::RankFailed`] naming rank 0 elsewhere: for a failure every
    /// rank finds, told once.
    pub fn told_by_root(&self, error: Error) -> Error {
        match self.is_root() {
            true => error,
            false => Error::RankFailed { rank: 0 },
        }
    }

    /// Whether `flag` holds on any rank.
    pub fn any(&self, flag: bool) -> bool {
        self.first_rank_where(flag).is_some()
    }

    /// The lowest rank whose `value` differs from rank 0's; `None` when all agree.
    pub fn first_differing(&self, value: u64) -> Option<usize> {
        let root = self.broadcast_u64(value);
        self.first_rank_where(value != root)
    }

    /// Rank 0's `value`, on every rank.
    pub fn broadcast_u64(&self, value: u64) -> u64 {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::traits::{Communicator, Root};
            let mut v = value;
            m.world.process_at_rank(0).broadcast_into(&mut v);
            return v;
        }
        value
    }

    /// Rank 0's `bytes`, on every rank (what the others pass is ignored).
    pub fn broadcast_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::traits::{Communicator, Root};
            let len = self.broadcast_u64(bytes.len() as u64) as usize;
            let mut buf = bytes;
            buf.resize(len, 0);
            m.world.process_at_rank(0).broadcast_into(&mut buf[..]);
            return buf;
        }
        bytes
    }

    /// Ends every rank of the job at once with exit status `code` (MPI_Abort), so that no rank
    /// waits forever on one that failed; a single process just exits.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(m) = &self.mpi {
            use mpi::traits::Communicator;
            m.world.abort(code);
        }
        std::process::exit(code)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x100_0000_01b3;

/// FNV-1a hash of `bytes`: what ranks compare to find that they differ.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
}

/// FNV-1a hash of the bits of `values` (weights, data), little-endian.
pub fn fingerprint_f32(values: &[f32]) -> u64 {
    values.iter().fold(FNV_OFFSET, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME))
    })
}

/// Rows `rank` gets of a batch of `n` rows split over `size` ranks (see [`Group::rows`]).
///
/// # Errors
/// [`Error::Config`] when `n < size`.
pub fn shard_rows(n: usize, rank: usize, size: usize, what: &str) -> Result<Range<usize>> {
    if n < size {
        return Err(Error::Config(format!(
            "cannot split {what} of {n} rows across {size} processes: give every process at least one row (at most {n} processes, or a larger batch)"
        )));
    }
    Ok(share(n, rank, size))
}

/// Rows `rank` gets of `n` rows split over `size` ranks, possibly none (the last, short batch
/// of an epoch): contiguous, in rank order, the first `n mod size` ranks one row more.
pub fn share(n: usize, rank: usize, size: usize) -> Range<usize> {
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_without_mpi_refuses_to_be_one_rank_of_many() {
        assert!(refuse_without_mpi(0, 1).is_ok());
        let e = refuse_without_mpi(1, 2).unwrap_err().to_string();
        assert!(
            e.contains("launched as rank 1 of 2 by an MPI launcher, but this seqrnn was built without the `mpi` feature"),
            "{e}"
        );
    }

    #[test]
    fn rows_cover_the_batch_in_rank_order() {
        for (n, size) in [(20, 1), (20, 2), (20, 3), (7, 7), (10, 4)] {
            let parts: Vec<_> = (0..size)
                .map(|r| shard_rows(n, r, size, "a batch").unwrap())
                .collect();
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts[size - 1].end, n);
            for w in parts.windows(2) {
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() >= w[1].len() && w[0].len() - w[1].len() <= 1);
            }
        }
        assert_eq!(shard_rows(20, 2, 3, "x").unwrap(), 14..20);
        let e = shard_rows(1, 0, 2, "the training batch").unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot split the training batch of 1 rows across 2 processes"),
            "{e}"
        );
    }

    #[test]
    fn a_single_process_reduces_to_itself() {
        let g = Group::single();
        let mut v = vec![1.5f32, -2.0];
        g.sum_f32(&mut v);
        assert_eq!(v, [1.5, -2.0]);
        assert_eq!(g.first_rank_where(true), Some(0));
        assert_eq!(g.first_rank_where(false), None);
        assert_eq!(g.first_differing(7), None);
        assert_eq!(g.broadcast_bytes(b"abc".to_vec()), b"abc");
        assert!(g.is_root() && !g.is_distributed());
    }
}
