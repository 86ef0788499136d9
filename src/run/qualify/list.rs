//! `qualify --list`: the matrix as JSON a CI turns into its own job matrix.
//!
//! The shape is GitHub Actions' `strategy.matrix` with an `include` list
//! (`matrix: ${{ fromJSON(needs.list.outputs.cells) }}`); GitLab's
//! `parallel:matrix` and Jenkins' parallel stages read the same list.
//! Only `include` sits at the top: any other key would become an axis.

use serde_json::{Value, json};

use super::partition::{Partition, cells_of};
use crate::targets::chart::qualification::Matrix;

/// One entry per cell: id, pin, profile, each axis, the expected outcome, and the
/// partition of `count` it falls in (`--partition` runs it).
pub fn cells_json(m: &Matrix, count: u32) -> Value {
    let mut include = Vec::new();
    for index in 1..=count {
        let p = Partition { index, count };
        for c in cells_of(m, p) {
            include.push((
                m.cells.iter().position(|x| x.id == c.id),
                json!({
                    "id": c.id,
                    "pin": c.pin,
                    "profile": c.profile,
                    "firmware": c.firmware,
                    "ciphers": c.ciphers,
                    "lan": c.lan,
                    "expect": c.expect,
                    "partition": p.to_string(),
                }),
            ));
        }
    }
    // The matrix file's order, whatever the partitions.
    include.sort_by_key(|(k, _)| *k);
    json!({ "include": include.into_iter().map(|(_, v)| v).collect::<Vec<_>>() })
}

/// One entry per partition: what each runner of an N-runner CI matrix
/// passes to `--partition`, and the cell ids it will run.
pub fn partitions_json(m: &Matrix, count: u32) -> Value {
    let include: Vec<Value> = (1..=count)
        .map(|index| {
            let p = Partition { index, count };
            json!({
                "partition": p.to_string(),
                // A string: every CI can pass it on as it is.
                "cells": cells_of(m, p).iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(" "),
            })
        })
        .collect();
    json!({ "include": include })
}
