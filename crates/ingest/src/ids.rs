//! Dense ids: every distinct original id gets an index in 0..n, in sorted or first-seen order.
//! Rows are stored with first-seen codes while the file is read; once it is read, the codes
//! are ranked into dense ids.

use crate::config::{Encoding, IdOrder};
use crate::text::{self, parse_i64};
use rayon::prelude::*;
use recpipe_core::ratings::Ids;
use std::collections::HashMap;

/// Raw ids below this go through a direct table (4 bytes per possible id); MovieLens ids are
/// compact, while a sparse id space (hashes, phone numbers) would make the table huge.
const DIRECT: u32 = 1 << 24;
const UNSET: u32 = u32::MAX;

/// Gives raw integer ids first-seen codes 0, 1, 2, … as rows stream past, so rows can be
/// stored before the sorted order of all ids is known.
#[derive(Default)]
pub(crate) struct FirstSeen {
    table: Vec<u32>,
    map: HashMap<u32, u32>,
    /// The raw id of each code.
    pub values: Vec<u32>,
}

impl FirstSeen {
    #[inline]
    pub fn code(&mut self, v: u32) -> u32 {
        if v < DIRECT {
            let i = v as usize;
            if i >= self.table.len() {
                let len = (i + 1).next_power_of_two().max(1 << 12);
                self.table.resize(len, UNSET);
            }
            let t = &mut self.table[i];
            if *t == UNSET {
                *t = self.values.len() as u32;
                self.values.push(v);
            }
            *t
        } else {
            let next = self.values.len() as u32;
            let c = *self.map.entry(v).or_insert(next);
            if c == next {
                self.values.push(v);
            }
            c
        }
    }
}

/// The original ids of first-seen codes by dense index, and code → dense index (`None`
/// when they are the same: first-seen order).
pub(crate) fn order_values(values: &[u32], order: IdOrder) -> (Ids, Option<Vec<u32>>) {
    match order {
        IdOrder::FirstSeen => (Ids::Int(values.iter().map(|&v| v as i64).collect()), None),
        IdOrder::Sorted => {
            let mut perm: Vec<u32> = (0..values.len() as u32).collect();
            perm.par_sort_unstable_by_key(|&c| values[c as usize]);
            let ids = Ids::Int(perm.iter().map(|&c| values[c as usize] as i64).collect());
            (ids, Some(rank_of(&perm)))
        }
    }
}

/// [`order_values`] for interned keys (first-seen codes into `keys`); ids are numeric when
/// every key is a canonical integer (so `007` stays text and cannot collide with `7`).
pub(crate) fn order_keys(
    keys: Vec<Box<[u8]>>,
    order: IdOrder,
    encoding: Encoding,
) -> (Ids, Option<Vec<u32>>) {
    let numeric: Option<Vec<i64>> = keys
        .iter()
        .map(|k| parse_i64(k).filter(|v| v.to_string().as_bytes() == &k[..]))
        .collect();
    let mut perm: Vec<u32> = (0..keys.len() as u32).collect();
    let ids = match numeric {
        Some(values) => {
            if order == IdOrder::Sorted {
                perm.sort_unstable_by_key(|&c| values[c as usize]);
            }
            Ids::Int(perm.iter().map(|&c| values[c as usize]).collect())
        }
        None => {
            let strings: Vec<String> = keys
                .iter()
                .map(|k| text::decode(k, encoding).into_owned())
                .collect();
            if order == IdOrder::Sorted {
                perm.sort_unstable_by(|&a, &b| strings[a as usize].cmp(&strings[b as usize]));
            }
            Ids::Str(perm.iter().map(|&c| strings[c as usize].clone()).collect())
        }
    };
    let rank = (order == IdOrder::Sorted).then(|| rank_of(&perm));
    (ids, rank)
}

/// The inverse permutation: code → its position in `perm`.
fn rank_of(perm: &[u32]) -> Vec<u32> {
    let mut rank = vec![0u32; perm.len()];
    for (i, &c) in perm.iter().enumerate() {
        rank[c as usize] = i as u32;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(col: &[u32], order: IdOrder) -> (Ids, Vec<u32>) {
        let mut fs = FirstSeen::default();
        let codes: Vec<u32> = col.iter().map(|&v| fs.code(v)).collect();
        let (ids, rank) = order_values(&fs.values, order);
        let d = codes
            .iter()
            .map(|&c| rank.as_ref().map_or(c, |r| r[c as usize]))
            .collect();
        (ids, d)
    }

    #[test]
    fn raw_ids_sorted_and_first_seen() {
        let c = [30, 10, 30, 20];
        assert_eq!(
            dense(&c, IdOrder::Sorted),
            (Ids::Int(vec![10, 20, 30]), vec![2, 0, 2, 1])
        );
        assert_eq!(
            dense(&c, IdOrder::FirstSeen),
            (Ids::Int(vec![30, 10, 20]), vec![0, 1, 0, 2])
        );
        // Sparse ids take the map path and give the same answer.
        let c = [4_000_000_000, 7, 4_000_000_000];
        assert_eq!(
            dense(&c, IdOrder::Sorted),
            (Ids::Int(vec![7, 4_000_000_000]), vec![1, 0, 1])
        );
    }

    #[test]
    fn text_keys() {
        let keys: Vec<Box<[u8]>> = vec![b"b".as_slice().into(), b"a".as_slice().into()];
        let (ids, rank) = order_keys(keys, IdOrder::Sorted, Encoding::Auto);
        assert_eq!(ids, Ids::Str(vec!["a".into(), "b".into()]));
        assert_eq!(rank, Some(vec![1, 0]));
        let keys: Vec<Box<[u8]>> = vec![b"-5".as_slice().into(), b"3".as_slice().into()];
        let (ids, rank) = order_keys(keys, IdOrder::Sorted, Encoding::Auto);
        assert_eq!(ids, Ids::Int(vec![-5, 3]));
        assert_eq!(rank, Some(vec![0, 1]));
        let keys: Vec<Box<[u8]>> = vec![b"b".as_slice().into(), b"a".as_slice().into()];
        let (ids, rank) = order_keys(keys, IdOrder::FirstSeen, Encoding::Auto);
        assert_eq!((ids, rank), (Ids::Str(vec!["b".into(), "a".into()]), None));
    }
}
