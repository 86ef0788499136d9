//! Which cells of a matrix a runner takes under `--partition I/N`.
//!
//! The split depends on the cell ids alone, so every runner of a CI matrix
//! computes the same one without talking to the others: the ids are ordered
//! by their SHA-256 (then by id), and the k-th id of that order goes to
//! partition `k mod N + 1`. Every cell lands in exactly one partition, the
//! partitions' sizes differ by at most one, and neither the order of the
//! cells in the file nor their axes move a cell.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::run::record::sha256_hex;
use crate::targets::chart::qualification::{Cell, Matrix};

/// The largest N accepted: more runners than that is a typo.
pub const MAX_PARTITIONS: u32 = 256;

/// One share of a matrix: `index` of `count`, 1-based (`2/4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// The whole matrix: what a single runner runs.
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    /// `I-of-N`, for file names.
    pub fn file_tag(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--partition` value that is not `I/N` with 1 <= I <= N <= 256.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("partition `{0}`: allowed: I/N with 1 <= I <= N <= {MAX_PARTITIONS}, e.g. 2/4")]
pub struct PartitionError(pub String);

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PartitionError(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count || count > MAX_PARTITIONS {
            return Err(bad());
        }
        Ok(Partition { index, count })
    }
}

impl Serialize for Partition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The partition (its index, 1-based) of every id, in the order given.
pub fn assign(ids: &[&str], count: u32) -> Vec<u32> {
    let count = count.max(1);
    let mut order: Vec<(String, usize)> = ids
        .iter()
        .enumerate()
        .map(|(k, id)| (sha256_hex(id.as_bytes()), k))
        .collect();
    // Ties only for equal ids (a matrix has none); the id breaks them anyway.
    order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| ids[a.1].cmp(ids[b.1])));
    let mut out = vec![0; ids.len()];
    for (rank, (_, k)) in order.iter().enumerate() {
        out[*k] = (rank as u32 % count) + 1;
    }
    out
}

/// The cells of `m` in partition `p`, in the matrix's order.
pub fn cells_of(m: &Matrix, p: Partition) -> Vec<&Cell> {
    let ids: Vec<&str> = m.cells.iter().map(|c| c.id.as_str()).collect();
    assign(&ids, p.count)
        .into_iter()
        .zip(&m.cells)
        .filter(|(i, _)| *i == p.index)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!(
            "2/4".parse::<Partition>(),
            Ok(Partition { index: 2, count: 4 })
        );
        assert_eq!("1/1".parse::<Partition>(), Ok(Partition::WHOLE));
        for bad in ["0/2", "3/2", "1/0", "2", "a/b", "1/257", "-1/2", ""] {
            let err = bad.parse::<Partition>().unwrap_err();
            assert!(err.to_string().contains("allowed: I/N"), "{bad}: {err}");
        }
    }

    /// Property test over random id sets (seeded, so a failure repeats):
    /// for N = 1..=8, every id in exactly one partition in 1..=N, sizes
    /// within one of each other, and the split independent of input order.
    #[test]
    fn every_id_in_exactly_one_partition_for_n_1_to_8() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        for round in 0..200 {
            let len = rng.random_range(0..40usize);
            let mut ids: Vec<String> = (0..len)
                .map(|k| format!("cell-{k}-{}", rng.random_range(0..1_000_000u32)))
                .collect();
            ids.sort();
            ids.dedup();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            for n in 1..=8u32 {
                let parts = assign(&refs, n);
                assert_eq!(parts.len(), refs.len());
                let mut sizes = vec![0usize; n as usize];
                for p in &parts {
                    assert!((1..=n).contains(p), "round {round}: {p} of {n}");
                    sizes[*p as usize - 1] += 1;
                }
                assert_eq!(sizes.iter().sum::<usize>(), refs.len());
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "round {round}, n {n}: sizes {sizes:?}");
                // Another machine may read the cells in another order.
                let mut shuffled: Vec<(&str, u32)> =
                    refs.iter().copied().zip(parts.iter().copied()).collect();
                shuffled.shuffle(&mut rng);
                let again = assign(&shuffled.iter().map(|(id, _)| *id).collect::<Vec<_>>(), n);
                for ((id, want), got) in shuffled.iter().zip(again) {
                    assert_eq!(*want, got, "round {round}, n {n}: {id} moved");
                }
            }
        }
    }

    #[test]
    fn the_split_is_pinned_across_machines_and_versions() {
        // A change of the hash or the order would split differently on
        // runners built from different commits: this pins it.
        let ids = ["a", "b", "c", "d", "e"];
        insta::assert_snapshot!(
            format!("{:?} {:?} {:?}", assign(&ids, 1), assign(&ids, 2), assign(&ids, 3)),
            @"[1, 1, 1, 1, 1] [1, 1, 2, 1, 2] [2, 3, 2, 1, 1]"
        );
    }
}
