//! The ratings row group being built for the Parquet writer, with its memory recycled: the
//! columns of a row group sent to be encoded come back once the encoder has dropped them,
//! and the next row group is filled into them instead of into fresh pages, which the kernel
//! would fault in and zero for every row group (20 MB each, 500 MB at 25M ratings).

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, UInt32Array};
use arrow_buffer::{Buffer, ScalarBuffer};
use std::collections::VecDeque;
use std::sync::Arc;

/// Row groups whose buffers are kept for reuse, at most (the writer holds a few in flight).
const KEEP: usize = 6;

/// The columns of the row group being built (`ts` empty when the file has no timestamps).
pub(crate) struct Batch {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub rating: Vec<f32>,
    pub ts: Vec<i64>,
    has_ts: bool,
    /// The buffers of the row groups sent, oldest first: a clone each, so that a buffer is
    /// ours alone again once the encoder's record batch is dropped.
    sent: VecDeque<[Buffer; 4]>,
}

impl Batch {
    pub fn with_capacity(cap: usize, has_ts: bool) -> Batch {
        Batch {
            user: Vec::with_capacity(cap),
            item: Vec::with_capacity(cap),
            rating: Vec::with_capacity(cap),
            ts: Vec::with_capacity(if has_ts { cap } else { 0 }),
            has_ts,
            sent: VecDeque::new(),
        }
    }

    /// The rows so far as a record batch; the columns start again, empty, in the buffers of
    /// an earlier row group the encoder is done with, or with `cap` rows of fresh room.
    pub fn take(&mut self, schema: &arrow_schema::SchemaRef, cap: usize) -> RecordBatch {
        let n = self.user.len();
        let (user, item, rating, ts) = self.recycled(cap);
        let user = Buffer::from_vec(std::mem::replace(&mut self.user, user));
        let item = Buffer::from_vec(std::mem::replace(&mut self.item, item));
        let rating = Buffer::from_vec(std::mem::replace(&mut self.rating, rating));
        let ts = Buffer::from_vec(std::mem::replace(&mut self.ts, ts));
        let ts_col: ArrayRef = if self.has_ts {
            Arc::new(Int64Array::new(ScalarBuffer::new(ts.clone(), 0, n), None))
        } else {
            Arc::new(Int64Array::new_null(n))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt32Array::new(
                    ScalarBuffer::new(user.clone(), 0, n),
                    None,
                )),
                Arc::new(UInt32Array::new(
                    ScalarBuffer::new(item.clone(), 0, n),
                    None,
                )),
                Arc::new(Float32Array::new(
                    ScalarBuffer::new(rating.clone(), 0, n),
                    None,
                )),
                ts_col,
            ],
        )
        .expect("columns match the ratings schema");
        if cap > 0 {
            if self.sent.len() == KEEP {
                self.sent.pop_front();
            }
            self.sent.push_back([user, item, rating, ts]);
        }
        batch
    }

    /// Empty columns for the next row group: the oldest sent row group's, if the encoder has
    /// let go of them, else fresh ones with room for `cap` rows.
    fn recycled(&mut self, cap: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>, Vec<i64>) {
        let fresh_ts = || Vec::with_capacity(if self.has_ts { cap } else { 0 });
        let fresh = || {
            let ts = fresh_ts();
            (
                Vec::with_capacity(cap),
                Vec::with_capacity(cap),
                Vec::with_capacity(cap),
                ts,
            )
        };
        if cap == 0 {
            return (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        }
        let Some([user, item, rating, ts]) = self.sent.pop_front() else {
            return fresh();
        };
        // The encoder drops a row group's columns together; the user column tells.
        let mut user: Vec<u32> = match user.into_vec() {
            Ok(v) => v,
            Err(user) => {
                self.sent.push_front([user, item, rating, ts]);
                return fresh();
            }
        };
        let mut item: Vec<u32> = reuse(item, cap);
        let mut rating: Vec<f32> = reuse(rating, cap);
        let mut ts: Vec<i64> = reuse(ts, if self.has_ts { cap } else { 0 });
        user.clear();
        item.clear();
        rating.clear();
        ts.clear();
        (user, item, rating, ts)
    }
}

/// The vector behind `b` if it is ours alone again, else a fresh one with room for `cap`.
fn reuse<T: arrow_buffer::ArrowNativeType>(b: Buffer, cap: usize) -> Vec<T> {
    b.into_vec().unwrap_or_else(|_| Vec::with_capacity(cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use recpipe_core::schema;

    /// Once a sent row group is dropped, the next one is built in its memory; while it is
    /// held, fresh columns are used and the held batch is left as it was.
    #[test]
    fn buffers_come_back_once_the_batch_is_dropped() {
        let schema = std::sync::Arc::new(schema::ratings());
        let mut b = Batch::with_capacity(4, true);
        let fill = |b: &mut Batch, base: u32| {
            for k in 0..4 {
                b.user.push(base + k);
                b.item.push(base + 10 + k);
                b.rating.push(k as f32);
                b.ts.push(i64::from(base + k));
            }
        };
        fill(&mut b, 0);
        let first = b.take(&schema, 4);
        let first_ptr = first.column(0).to_data().buffers()[0].as_ptr();
        // Held: the next columns must be fresh, and the held batch unchanged by them.
        fill(&mut b, 100);
        assert_ne!(b.user.as_ptr() as *const u8, first_ptr);
        let second = b.take(&schema, 4);
        let users = |r: &RecordBatch| {
            r.column(0)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        assert_eq!(users(&first), vec![0, 1, 2, 3]);
        assert_eq!(users(&second), vec![100, 101, 102, 103]);
        drop(first);
        // The first row group's memory is free: the third is built in it.
        fill(&mut b, 200);
        let _ = b.take(&schema, 4);
        fill(&mut b, 300);
        assert_eq!(b.user.as_ptr() as *const u8, first_ptr);
        assert_eq!(users(&second), vec![100, 101, 102, 103]);
        let last = b.take(&schema, 0);
        assert_eq!(users(&last), vec![300, 301, 302, 303]);
        assert_eq!(last.num_rows(), 4);
    }
}
