//! Dense ids: every distinct original id gets an index in 0..n, in sorted or first-seen order.

use crate::config::{Encoding, IdOrder};
use crate::text::{self, parse_i64};
use rayon::prelude::*;
use recpipe_core::ratings::Ids;
use std::collections::HashMap;

/// Rewrite raw integer ids in `col` as dense indices; returns the original ids by index.
pub(crate) fn densify_raw(col: &mut [u32], order: IdOrder) -> Ids {
    let max = col.par_iter().copied().max().unwrap_or(0) as usize;
    const UNSET: u32 = u32::MAX;
    let mut ids: Vec<i64> = Vec::new();
    // A direct table is the fast path when ids are compact (MovieLens ids are); a sparse id
    // space (hashes, phone numbers) would make it huge, so those go through a map.
    if max <= col.len().saturating_mul(4) + (1 << 20) {
        let mut table = vec![UNSET; max + 1];
        match order {
            IdOrder::Sorted => {
                for &v in col.iter() {
                    table[v as usize] = 0;
                }
                let mut next = 0u32;
                for (v, t) in table.iter_mut().enumerate() {
                    if *t == 0 {
                        *t = next;
                        ids.push(v as i64);
                        next += 1;
                    }
                }
            }
            IdOrder::FirstSeen => {
                for &v in col.iter() {
                    let t = &mut table[v as usize];
                    if *t == UNSET {
                        *t = ids.len() as u32;
                        ids.push(v as i64);
                    }
                }
            }
        }
        col.par_iter_mut().for_each(|v| *v = table[*v as usize]);
    } else {
        let mut map: HashMap<u32, u32> = HashMap::new();
        for &v in col.iter() {
            map.entry(v).or_insert_with(|| {
                ids.push(v as i64);
                (ids.len() - 1) as u32
            });
        }
        if order == IdOrder::Sorted {
            ids.sort_unstable();
            for (i, &v) in ids.iter().enumerate() {
                map.insert(v as u32, i as u32);
            }
        }
        col.par_iter_mut().for_each(|v| *v = map[v]);
    }
    Ids::Int(ids)
}

/// Rewrite first-seen codes into `keys` as dense indices; ids are numeric when every key is
/// a canonical integer (so `007` stays text and cannot collide with `7`).
pub(crate) fn densify_keys(
    col: &mut [u32],
    keys: Vec<Box<[u8]>>,
    order: IdOrder,
    encoding: Encoding,
) -> Ids {
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
    if order == IdOrder::Sorted {
        let mut rank = vec![0u32; perm.len()];
        for (i, &c) in perm.iter().enumerate() {
            rank[c as usize] = i as u32;
        }
        col.par_iter_mut().for_each(|v| *v = rank[*v as usize]);
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ids_sorted_and_first_seen() {
        let mut c = vec![30, 10, 30, 20];
        assert_eq!(
            densify_raw(&mut c, IdOrder::Sorted),
            Ids::Int(vec![10, 20, 30])
        );
        assert_eq!(c, vec![2, 0, 2, 1]);
        let mut c = vec![30, 10, 30, 20];
        assert_eq!(
            densify_raw(&mut c, IdOrder::FirstSeen),
            Ids::Int(vec![30, 10, 20])
        );
        assert_eq!(c, vec![0, 1, 0, 2]);
        // Sparse ids take the map path and give the same answer.
        let mut c = vec![4_000_000_000, 7, 4_000_000_000];
        assert_eq!(
            densify_raw(&mut c, IdOrder::Sorted),
            Ids::Int(vec![7, 4_000_000_000])
        );
        assert_eq!(c, vec![1, 0, 1]);
    }

    #[test]
    fn text_keys() {
        let keys: Vec<Box<[u8]>> = vec![b"b".as_slice().into(), b"a".as_slice().into()];
        let mut c = vec![0, 1, 0];
        let ids = densify_keys(&mut c, keys, IdOrder::Sorted, Encoding::Auto);
        assert_eq!(ids, Ids::Str(vec!["a".into(), "b".into()]));
        assert_eq!(c, vec![1, 0, 1]);
        let keys: Vec<Box<[u8]>> = vec![b"-5".as_slice().into(), b"3".as_slice().into()];
        let mut c = vec![1, 0];
        let ids = densify_keys(&mut c, keys, IdOrder::Sorted, Encoding::Auto);
        assert_eq!(ids, Ids::Int(vec![-5, 3]));
        assert_eq!(c, vec![1, 0]);
    }
}
