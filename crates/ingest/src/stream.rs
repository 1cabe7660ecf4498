//! Ingest in bounded memory. The ratings file is read block by block; each row is stored
//! with first-seen id codes in the [`Store`] (in memory up to the budget, then in a spill
//! file), and only the id maps and per-id counters grow with the data. Once the file is read
//! the codes are ranked into dense ids, unknown items and duplicates are resolved (an
//! external sort when rows may repeat), and one more pass over the store remaps the rows,
//! counts the per-user and per-item statistics and streams the row groups to Parquet.
//!
//! The result is the same, row for row and id for id, whether the store spilled or not.

use crate::batch::Batch;
use crate::config::{Config, Duplicates, IdOrder, UnknownItems};
use crate::error::IngestError;
use crate::extsort::{Record, Sorter};
use crate::ids::{self, FirstSeen};
use crate::parse::{self, RawColumns, Reject, RowSink, Spec};
use crate::store::{Rows, Segment, Store};
use crate::tables::Stats;
use recpipe_core::memory::{human_bytes, parse_size};
use recpipe_core::parquet_io::ROW_GROUP_ROWS;
use recpipe_core::ratings::Ids;
use recpipe_core::{Progress, schema};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The setting every memory error names.
const SETTING: &str = "memory_budget";
/// Below this the row store could not hold a block's rows.
const MIN_STORE: u64 = 256 << 10;
/// Bytes a row takes while a row group is built and encoded (columns + pages).
const ROW_IN_FLIGHT: u64 = 28;
/// Bytes of a short ratings line (as the memory estimate assumes).
const LINE: u64 = 20;

/// How the budget is shared out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub budget: u64,
    /// Bytes of text per block read (two blocks are held, plus their parsed rows).
    pub block: usize,
    /// What the row store may hold in memory; the rest of the budget is rows in flight.
    pub store_limit: usize,
}

/// Reads `memory_budget` and shares it between the blocks being parsed, the row groups being
/// encoded and the row store; refuses a budget those cannot fit in.
pub(crate) fn plan(cfg: &Config, file_len: u64) -> Result<Plan, IngestError> {
    let budget = parse_size(&cfg.memory_budget).ok_or_else(|| {
        IngestError::config(
            SETTING,
            format!(
                "`{}` is not a size; write it like \"512MiB\" or \"2GiB\"",
                cfg.memory_budget
            ),
        )
    })?;
    let block = (budget / 32).clamp(64 << 10, parse::BLOCK as u64);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let rows = (file_len / LINE).max(1);
    let groups = rows.div_ceil(ROW_GROUP_ROWS as u64).min(threads + 2);
    let write = groups * rows.min(ROW_GROUP_ROWS as u64) * ROW_IN_FLIGHT;
    let working = (4 * block).max(write);
    if budget < working + MIN_STORE {
        return Err(IngestError::config(
            SETTING,
            format!(
                "{} is too small to make progress: reading blocks of {} and encoding {} row \
                 group(s) of up to {} rows need {}; raise memory_budget to at least {}",
                human_bytes(budget),
                human_bytes(block),
                groups,
                ROW_GROUP_ROWS,
                human_bytes(working),
                human_bytes(working + MIN_STORE),
            ),
        ));
    }
    Ok(Plan {
        budget,
        block: block as usize,
        store_limit: (budget - working) as usize,
    })
}

/// One id column as it streams past: raw ids get first-seen codes; interned ids already are
/// codes. Items also count their rows and note their first row (for unknown items).
#[derive(Default)]
struct IdColumn {
    first_seen: FirstSeen,
    count: bool,
    rows: Vec<u32>,
    first_row: Vec<u64>,
    codes: Vec<u32>,
}

impl IdColumn {
    fn code(&mut self, values: &[u32], interned: bool, row0: u64) {
        self.codes.clear();
        if interned {
            self.codes.extend_from_slice(values);
        } else {
            let fs = &mut self.first_seen;
            self.codes.extend(values.iter().map(|&v| fs.code(v)));
        }
        if self.count {
            for (k, &c) in self.codes.iter().enumerate() {
                let c = c as usize;
                if c == self.rows.len() {
                    self.rows.push(0);
                    self.first_row.push(row0 + k as u64);
                }
                self.rows[c] += 1;
            }
        }
    }
}

/// The parse's sink: codes the ids, watches whether (user, item) keys strictly increase in
/// dense order (then no pair can repeat), and stores the rows.
struct Sink {
    store: Store,
    user: IdColumn,
    item: IdColumn,
    order: IdOrder,
    /// Whether the keys are checked as they come: raw ids in sorted order, or first-seen
    /// codes in first-seen order, sort like their dense ids.
    checked: bool,
    increasing: bool,
    last: Option<(u32, u32)>,
    store_limit: usize,
}

impl Sink {
    fn maybe_repeats(&self) -> bool {
        !(self.checked && self.increasing)
    }
}

impl RowSink for Sink {
    fn push(
        &mut self,
        interned: [bool; 2],
        user: &[u32],
        item: &[u32],
        rating: &[f32],
        ts: Option<&[i64]>,
    ) -> Result<(), IngestError> {
        let row0 = self.store.rows();
        let (u, i) = (&mut self.user, &mut self.item);
        rayon::join(
            || u.code(user, interned[0], row0),
            || i.code(item, interned[1], row0),
        );
        let sorted = self.order == IdOrder::Sorted;
        self.checked &= !(sorted && (interned[0] || interned[1]));
        if self.checked && self.increasing {
            let (ku, ki) = if sorted {
                (user, item)
            } else {
                (&self.user.codes[..], &self.item.codes[..])
            };
            let mut last = self.last;
            for (&a, &b) in ku.iter().zip(ki) {
                if last.is_some_and(|l| l >= (a, b)) {
                    self.increasing = false;
                    break;
                }
                last = Some((a, b));
            }
            self.last = last;
        }
        let seg = Segment::encode(&self.user.codes, &self.item.codes, rating, ts);
        let limit = if self.maybe_repeats() {
            // Half the room is kept for sorting the duplicate keys.
            self.store_limit / 2
        } else {
            self.store_limit
        };
        self.store.push(seg, limit)
    }

    fn restart(&mut self) {
        self.store.clear();
        for c in [&mut self.user, &mut self.item] {
            c.first_seen = FirstSeen::default();
            c.rows.clear();
            c.first_row.clear();
        }
        self.increasing = true;
        self.last = None;
        self.checked = true;
    }
}

/// The rows of the ratings file, stored, with their line bookkeeping and id maps.
pub(crate) struct Read {
    pub cols: RawColumns,
    store: Store,
    /// Original ids by dense index, and first-seen code → dense index (`None`: identical).
    pub user_ids: Ids,
    user_rank: Option<Vec<u32>>,
    pub item_ids: Ids,
    item_rank: Option<Vec<u32>>,
    item_rows: Vec<u32>,
    item_first_row: Vec<u64>,
    repeats_possible: bool,
    plan: Plan,
    /// Item codes whose rows are dropped (unknown_items = "reject").
    drop_item: Option<Vec<bool>>,
    /// Bytes of duplicate keys sorted in runs on disk.
    sort_spilled: u64,
}

/// Reads and stores the ratings file under the byte bar `bar`.
pub(crate) fn read(
    cfg: &Config,
    path: &Path,
    spec: &Spec,
    plan: Plan,
    spill_dir: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<Read, IngestError> {
    let mut spec = spec.clone();
    spec.block = spec.block.min(plan.block);
    spec.sub_chunk = spec.sub_chunk.min(spec.block);
    let mut sink = Sink {
        store: Store::new(spill_dir.join("rows.spill")),
        user: IdColumn::default(),
        item: IdColumn {
            count: true,
            ..IdColumn::default()
        },
        order: cfg.id_order,
        checked: true,
        increasing: true,
        last: None,
        store_limit: plan.store_limit,
    };
    let mut cols = parse::read_into(path, &spec, cfg.on_error, bar, &mut sink)?;
    let rank = |values: &[u32], keys: Option<Vec<Box<[u8]>>>| match keys {
        Some(keys) => ids::order_keys(keys, cfg.id_order, cfg.encoding),
        None => ids::order_values(values, cfg.id_order),
    };
    let (user_ids, user_rank) = rank(&sink.user.first_seen.values, cols.user_keys.take());
    let (item_ids, item_rank) = rank(&sink.item.first_seen.values, cols.item_keys.take());
    let repeats_possible = sink.maybe_repeats();
    Ok(Read {
        cols,
        store: sink.store,
        user_ids,
        user_rank,
        item_ids,
        item_rank,
        item_rows: sink.item.rows,
        item_first_row: sink.item.first_row,
        repeats_possible,
        plan,
        drop_item: None,
        sort_spilled: 0,
    })
}

fn dense(rank: &Option<Vec<u32>>, code: u32) -> u32 {
    rank.as_ref().map_or(code, |r| r[code as usize])
}

impl Read {
    pub fn rows(&self) -> u64 {
        self.store.rows()
    }

    /// Bytes of rows spilled, and of duplicate keys sorted on disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.store.spilled_bytes() + self.sort_spilled
    }

    /// Applies `unknown_items` to the ratings of the items `listed` does not know (asked
    /// with the item ids and a dense index); returns how many there were (kept, or moved
    /// into `cols.rejects`).
    pub fn unknown_items(
        &mut self,
        mode: UnknownItems,
        src: &crate::unknown::Source<'_>,
        listed: impl Fn(&Ids, usize) -> bool,
    ) -> Result<u64, IngestError> {
        let missing_code: Vec<bool> = (0..self.item_rows.len() as u32)
            .map(|c| !listed(&self.item_ids, dense(&self.item_rank, c) as usize))
            .collect();
        let codes: Vec<usize> = (0..missing_code.len())
            .filter(|&c| missing_code[c])
            .collect();
        let Some(&first) = codes.iter().min_by_key(|&&c| self.item_first_row[c]) else {
            return Ok(0);
        };
        let n: u64 = codes.iter().map(|&c| self.item_rows[c] as u64).sum();
        let first_row = self.item_first_row[first] as usize;
        let first_item = self
            .item_ids
            .display(dense(&self.item_rank, first as u32) as usize);
        let first_line = self.cols.line_of_row(first_row);
        match mode {
            UnknownItems::Error => {
                return Err(IngestError::UnknownItem {
                    path: src.ratings.to_path_buf(),
                    line: first_line,
                    column: src.item_column,
                    item: first_item,
                    items: src.items.to_path_buf(),
                });
            }
            UnknownItems::Keep => {
                crate::unknown::warn_kept(src, n, first_line, &first_item);
                return Ok(n);
            }
            UnknownItems::Reject => {}
        }
        // The rejected rows, and the users that keep at least one rating.
        let n_users = self.user_ids.len();
        let mut user_used = vec![false; n_users];
        let mut rejected: Vec<(usize, u32)> = Vec::new();
        let mut row = 0usize;
        let mut rows = Rows::default();
        self.store.for_each(|seg| {
            seg.decode_into(&mut rows);
            for (&u, &i) in rows.user.iter().zip(&rows.item) {
                if missing_code[i as usize] {
                    rejected.push((row, i));
                } else {
                    user_used[u as usize] = true;
                }
                row += 1;
            }
            Ok(())
        })?;
        let lines: Vec<u64> = rejected
            .iter()
            .map(|&(r, _)| self.cols.line_of_row(r))
            .collect();
        let texts = crate::unknown::read_lines(src.ratings, &lines)?;
        let items_name = src.items.file_name().map_or_else(
            || src.items.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        for ((&(_, i), &line), text) in rejected.iter().zip(&lines).zip(texts) {
            self.cols.rejects.push(Reject {
                line,
                column: src.item_column,
                reason: format!(
                    "item {} is not in {items_name}",
                    self.item_ids.display(dense(&self.item_rank, i) as usize)
                ),
                text,
            });
        }
        self.cols.rejects.sort_by_key(|r| r.line);
        // Ids are renumbered without the dropped ones, keeping the order of the rest.
        let user_keep = in_dense_order(&user_used, &self.user_rank);
        let item_keep = in_dense_order(
            &missing_code.iter().map(|&m| !m).collect::<Vec<_>>(),
            &self.item_rank,
        );
        self.user_rank = Some(compact(&mut self.user_ids, &user_keep, &self.user_rank));
        self.item_rank = Some(compact(&mut self.item_ids, &item_keep, &self.item_rank));
        self.drop_item = Some(missing_code);
        Ok(n)
    }

    /// Rows left to write before duplicates are removed.
    pub fn rows_kept_before_dedup(&self) -> u64 {
        self.rows() - self.drop_item.as_ref().map_or(0, |_| self.rejected_rows())
    }

    fn rejected_rows(&self) -> u64 {
        let Some(drop) = &self.drop_item else {
            return 0;
        };
        drop.iter()
            .zip(&self.item_rows)
            .filter(|(d, _)| **d)
            .map(|(_, &n)| n as u64)
            .sum()
    }
}

/// Flags by code → flags by dense index.
fn in_dense_order(by_code: &[bool], rank: &Option<Vec<u32>>) -> Vec<bool> {
    let mut out = vec![false; by_code.len()];
    for (c, &k) in by_code.iter().enumerate() {
        out[dense(rank, c as u32) as usize] = k;
    }
    out
}

/// Drops the ids not in `keep` (by dense index); returns code → new dense index (codes of
/// dropped ids map to u32::MAX and are never looked up).
fn compact(ids: &mut Ids, keep: &[bool], rank: &Option<Vec<u32>>) -> Vec<u32> {
    let mut remap = vec![u32::MAX; keep.len()];
    let mut next = 0u32;
    for (d, &k) in keep.iter().enumerate() {
        if k {
            remap[d] = next;
            next += 1;
        }
    }
    let mut it = keep.iter();
    match ids {
        Ids::Int(v) => v.retain(|_| *it.next().expect("one flag per id")),
        Ids::Str(v) => v.retain(|_| *it.next().expect("one flag per id")),
    }
    (0..keep.len() as u32)
        .map(|c| remap[dense(rank, c) as usize])
        .collect()
}

/// A row's (user, item) codes with its row number and values, sorted by key then row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key {
    user: u32,
    item: u32,
    row: u32,
    rating: f32,
    ts: i64,
}

impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.user, self.item, self.row).cmp(&(o.user, o.item, o.row))
    }
}

impl Record for Key {
    const SIZE: usize = 24;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user.to_le_bytes());
        out.extend_from_slice(&self.item.to_le_bytes());
        out.extend_from_slice(&self.row.to_le_bytes());
        out.extend_from_slice(&self.rating.to_le_bytes());
        out.extend_from_slice(&self.ts.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Key {
            user: u(0),
            item: u(4),
            row: u(8),
            rating: f32::from_bits(u(12)),
            ts: i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        }
    }
}

/// What happens to one row: dropped, or kept with a new rating and timestamp (mean).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decision {
    row: u32,
    set: Option<(f32, i64)>,
}

impl Eq for Decision {}
impl PartialOrd for Decision {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Decision {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.row.cmp(&o.row)
    }
}

impl Record for Decision {
    const SIZE: usize = 17;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.row.to_le_bytes());
        let (r, t) = self.set.unwrap_or((0.0, 0));
        out.push(self.set.is_some() as u8);
        out.extend_from_slice(&r.to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        Decision {
            row: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            set: (b[4] == 1).then(|| {
                (
                    f32::from_le_bytes(b[5..9].try_into().expect("4 bytes")),
                    i64::from_le_bytes(b[9..17].try_into().expect("8 bytes")),
                )
            }),
        }
    }
}

/// Duplicates resolved: how many rows go, and the sorted decisions for the write pass.
pub(crate) struct Dedup {
    pub removed: u64,
    decisions: Option<Sorter<Decision>>,
}

impl Read {
    /// Resolves repeated (user, item) pairs by `policy`. Skipped (no pass over the rows)
    /// when the keys were seen to strictly increase.
    pub fn dedup(
        &mut self,
        policy: Duplicates,
        ratings: &Path,
        spill_dir: &Path,
        progress: &Progress,
    ) -> Result<Dedup, IngestError> {
        if !self.repeats_possible {
            return Ok(Dedup {
                removed: 0,
                decisions: None,
            });
        }
        let room = self
            .plan
            .store_limit
            .saturating_sub(self.store.mem_bytes())
            .max(MIN_STORE as usize);
        let mut keys: Sorter<Key> = Sorter::new(room / 2, spill_dir.to_path_buf(), "keys", SETTING);
        let bar = progress.count(self.rows(), "duplicates");
        let dropped = self.drop_item.take();
        let mut row = 0u32;
        let mut rows = Rows::default();
        let pushed = self.store.for_each(|seg| {
            seg.decode_into(&mut rows);
            for k in 0..rows.item.len() {
                let (user, item) = (rows.user[k], rows.item[k]);
                if !dropped.as_ref().is_some_and(|d| d[item as usize]) {
                    keys.push(Key {
                        user,
                        item,
                        row,
                        rating: rows.rating[k],
                        ts: rows.ts.get(k).copied().unwrap_or(0),
                    })?;
                }
                row += 1;
            }
            bar.inc(rows.item.len() as u64);
            Ok(())
        });
        self.drop_item = dropped;
        pushed?;
        bar.finish_and_clear();
        let has_ts = self.cols.timestamp.is_some();
        self.sort_spilled += keys.spilled_bytes();
        let mut sorted = keys.finish()?;
        let mut decisions: Sorter<Decision> =
            Sorter::new(room / 2, spill_dir.to_path_buf(), "decisions", SETTING);
        let mut removed = 0u64;
        // duplicates = "error": the repeat with the lowest row, and the first row of its pair.
        let mut first_repeat: Option<(u32, u32, Key)> = None;
        let mut group: Vec<Key> = Vec::new();
        let mut resolve = |group: &mut Vec<Key>| -> Result<(), IngestError> {
            if group.len() > 1 {
                let (first, last) = (group[0], group[group.len() - 1]);
                match policy {
                    Duplicates::Error => {
                        if first_repeat.is_none_or(|(_, again, _)| group[1].row < again) {
                            first_repeat = Some((first.row, group[1].row, first));
                        }
                    }
                    Duplicates::KeepFirst | Duplicates::KeepLast | Duplicates::Mean => {
                        let kept = if policy == Duplicates::KeepLast {
                            last.row
                        } else {
                            first.row
                        };
                        if policy == Duplicates::Mean {
                            let mean = group.iter().map(|k| k.rating as f64).sum::<f64>()
                                / group.len() as f64;
                            let ts = group.iter().map(|k| k.ts).max().unwrap_or(first.ts);
                            decisions.push(Decision {
                                row: first.row,
                                set: Some((mean as f32, if has_ts { ts } else { 0 })),
                            })?;
                        }
                        for k in group.iter().filter(|k| k.row != kept) {
                            decisions.push(Decision {
                                row: k.row,
                                set: None,
                            })?;
                            removed += 1;
                        }
                    }
                }
            }
            group.clear();
            Ok(())
        };
        while let Some(k) = sorted.next()? {
            if group
                .last()
                .is_some_and(|g| (g.user, g.item) != (k.user, k.item))
            {
                resolve(&mut group)?;
            }
            group.push(k);
        }
        resolve(&mut group)?;
        drop(sorted);
        if let Some((first, again, k)) = first_repeat {
            return Err(IngestError::Duplicate {
                path: ratings.to_path_buf(),
                line: self.cols.line_of_row(again as usize),
                first_line: self.cols.line_of_row(first as usize),
                user: self
                    .user_ids
                    .display(dense(&self.user_rank, k.user) as usize),
                item: self
                    .item_ids
                    .display(dense(&self.item_rank, k.item) as usize),
            });
        }
        Ok(Dedup {
            removed,
            decisions: Some(decisions),
        })
    }
}

/// Counts of ratings rounded to the nearest 0.5 and their sum. Ratings on the half-star grid
/// of the usual scales (the bins of `fast`) are counted in an array and summed exactly from
/// their counts; any other rating goes through a map and into a running sum.
pub(crate) struct Histogram {
    fast: [u64; 64],
    bins: BTreeMap<i64, u64>,
    /// The sum of the ratings off the grid (or outside `fast`), in row order.
    other: f64,
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            fast: [0; 64],
            bins: BTreeMap::new(),
            other: 0.0,
        }
    }

    /// Adds one rating. A doubled f32 rating is exact, so a whole number there is a grid
    /// rating; `x.round()` is a libm call on baseline x86-64, and for the doubled ratings
    /// below 2^28 `x + 0.5` is exact and truncating it rounds the same.
    #[inline(always)]
    pub fn add(&mut self, r: f32) {
        let x2 = r * 2.0;
        let b = x2 as i32;
        if b as f32 == x2 && (0..64).contains(&b) {
            self.fast[b as usize] += 1;
            return;
        }
        self.add_off_grid(r);
    }

    #[cold]
    fn add_off_grid(&mut self, r: f32) {
        const EXACT: f64 = (1u64 << 28) as f64;
        let x = r as f64 * 2.0;
        let b = if (0.0..EXACT).contains(&x) {
            (x + 0.5) as i64
        } else {
            x.round() as i64
        };
        *self.bins.entry(b).or_default() += 1;
        self.other += r as f64;
    }

    /// The bins by label (`"3.5"`), and the sum of the ratings.
    pub fn finish(mut self) -> (BTreeMap<String, u64>, f64) {
        // Each grid rating is b / 2: their sum is exact in integers.
        let mut halves = 0u128;
        for (i, &c) in self.fast.iter().enumerate() {
            if c > 0 {
                halves += i as u128 * c as u128;
                *self.bins.entry(i as i64).or_default() += c;
            }
        }
        let h = self
            .bins
            .into_iter()
            .map(|(b, c)| (format!("{:.1}", b as f64 / 2.0), c))
            .collect();
        (h, halves as f64 / 2.0 + self.other)
    }
}

/// A count of ratings and their sum, per user or item.
#[derive(Clone, Copy, Default)]
struct Acc {
    n: u32,
    sum: f64,
}

impl Acc {
    fn stats(accs: Vec<Acc>) -> Stats {
        let mean = accs
            .iter()
            .map(|a| {
                if a.n == 0 {
                    0.0
                } else {
                    (a.sum / a.n as f64) as f32
                }
            })
            .collect();
        Stats {
            n: accs.iter().map(|a| a.n).collect(),
            mean,
        }
    }
}

/// What the write pass counted.
pub(crate) struct Written {
    pub rows: u64,
    pub user_stats: Stats,
    pub item_stats: Stats,
    pub histogram: BTreeMap<String, u64>,
    pub sum: f64,
    pub has_timestamps: bool,
}

impl Read {
    /// The last pass: rows remapped to dense ids, decisions applied, statistics counted and
    /// row groups of [`ROW_GROUP_ROWS`] streamed to `path`.
    pub fn write(
        &mut self,
        dedup: Dedup,
        path: &Path,
        progress: &Progress,
    ) -> Result<Written, IngestError> {
        let (n_users, n_items) = (self.user_ids.len(), self.item_ids.len());
        let schema = schema::with_metadata(
            schema::ratings(),
            &[
                (schema::META_N_USERS, n_users.to_string()),
                (schema::META_N_ITEMS, n_items.to_string()),
            ],
        );
        let has_ts = self.cols.timestamp.is_some();
        let mut decisions = match dedup.decisions {
            Some(d) => Some(d.finish()?),
            None => None,
        };
        let mut next = match decisions.as_mut() {
            Some(d) => d.next()?,
            None => None,
        };
        let mut users = vec![Acc::default(); n_users];
        let mut items = vec![Acc::default(); n_items];
        let mut hist = Histogram::new();
        let bar = progress.count(self.rows(), "write");
        let (urank, irank, dropped) = (&self.user_rank, &self.item_rank, &self.drop_item);
        let store = &mut self.store;
        let mut kept = 0u64;
        let batch_schema = schema.clone();
        recpipe_core::parquet_par::write_row_group_stream::<IngestError, _>(
            path,
            schema,
            |emit| {
                let cap = ROW_GROUP_ROWS;
                let mut b = Batch::with_capacity(cap, has_ts);
                let mut rows = Rows::default();
                let mut row = 0u32;
                store.for_each(|seg| {
                    seg.decode_into(&mut rows);
                    let n = rows.item.len();
                    let end = row + n as u32;
                    if dropped.is_some() || next.is_some_and(|d| d.row < end) {
                        // Rejected rows and duplicates leave, kept repeats take their mean.
                        let mut w = 0;
                        for k in 0..n {
                            let r = row + k as u32;
                            if dropped.as_ref().is_some_and(|d| d[rows.item[k] as usize]) {
                                continue;
                            }
                            let mut rating = rows.rating[k];
                            let mut ts = rows.ts.get(k).copied();
                            if let Some(d) = next.filter(|d| d.row == r) {
                                next = match decisions.as_mut() {
                                    Some(s) => s.next()?,
                                    None => None,
                                };
                                match d.set {
                                    None => continue,
                                    Some((nr, nt)) => {
                                        rating = nr;
                                        ts = ts.map(|_| nt);
                                    }
                                }
                            }
                            rows.user[w] = rows.user[k];
                            rows.item[w] = rows.item[k];
                            rows.rating[w] = rating;
                            if let Some(t) = ts {
                                rows.ts[w] = t;
                            }
                            w += 1;
                        }
                        rows.user.truncate(w);
                        rows.item.truncate(w);
                        rows.rating.truncate(w);
                        rows.ts.truncate(if has_ts { w } else { 0 });
                    }
                    row = end;
                    for (col, rank) in [(&mut rows.user, urank), (&mut rows.item, irank)] {
                        if let Some(rank) = rank {
                            col.iter_mut().for_each(|c| *c = rank[*c as usize]);
                        }
                    }
                    for ((&u, &i), &r) in rows.user.iter().zip(&rows.item).zip(&rows.rating) {
                        let (a, b) = (&mut users[u as usize], &mut items[i as usize]);
                        a.n += 1;
                        a.sum += r as f64;
                        b.n += 1;
                        b.sum += r as f64;
                        hist.add(r);
                    }
                    let len = rows.user.len();
                    let mut start = 0;
                    while start < len {
                        let take = (cap - b.user.len()).min(len - start);
                        let part = start..start + take;
                        b.user.extend_from_slice(&rows.user[part.clone()]);
                        b.item.extend_from_slice(&rows.item[part.clone()]);
                        b.rating.extend_from_slice(&rows.rating[part.clone()]);
                        if has_ts {
                            b.ts.extend_from_slice(&rows.ts[part]);
                        }
                        start += take;
                        if b.user.len() == cap {
                            kept += cap as u64;
                            emit(b.take(&batch_schema, cap))?;
                        }
                    }
                    bar.inc(n as u64);
                    Ok(())
                })?;
                if !b.user.is_empty() {
                    kept += b.user.len() as u64;
                    emit(b.take(&batch_schema, 0))?;
                }
                Ok(())
            },
        )?;
        bar.finish_and_clear();
        let (histogram, sum) = hist.finish();
        Ok(Written {
            rows: kept,
            user_stats: Acc::stats(users),
            item_stats: Acc::stats(items),
            histogram,
            sum,
            has_timestamps: has_ts,
        })
    }
}

/// The folder spill files go in (inside the output folder, removed when done).
pub(crate) fn spill_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(".spill")
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    /// Grid ratings are binned and summed from their counts, others (off the half-star grid,
    /// negative, beyond the array) are rounded to the nearest half and summed as they come:
    /// the bins and the sum a plain loop gives.
    #[test]
    fn histogram_bins_and_sums_every_rating() {
        let ratings = [
            0.5f32, 3.5, 3.5, 5.0, 3.7, 3.74, -1.0, 40.0, 2.25, 0.0, 10.0,
        ];
        let mut h = Histogram::new();
        ratings.iter().for_each(|&r| h.add(r));
        let (bins, sum) = h.finish();
        let plain: f64 = ratings.iter().map(|&r| r as f64).sum();
        assert!((sum - plain).abs() < 1e-9, "{sum} vs {plain}");
        let count = |label: &str| bins.get(label).copied().unwrap_or(0);
        assert_eq!(count("3.5"), 4, "3.5 twice, 3.7 and 3.74 → 3.5: {bins:?}");
        assert_eq!(count("4.0"), 0);
        assert_eq!(count("-1.0"), 1);
        assert_eq!(count("40.0"), 1);
        assert_eq!(count("2.5"), 1, "2.25 rounds half away from zero: {bins:?}");
        assert_eq!(
            count("0.0") + count("0.5") + count("5.0") + count("10.0"),
            4
        );
        assert_eq!(bins.values().sum::<u64>(), ratings.len() as u64);
    }
}
