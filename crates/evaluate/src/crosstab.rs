//! The notebooks' first look at the data: the most active users × the most rated movies,
//! one cell per rating (`pd.crosstab`), with gaps where a user never rated the movie.

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use arrow_schema::{Field, Schema};
use recpipe_core::Ratings;
use recpipe_core::ratings::Catalog;
use std::collections::HashSet;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Crosstab {
    /// Row labels: original user ids.
    pub users: Vec<String>,
    /// Column labels: movie titles (made unique), original ids when there is no title.
    pub items: Vec<String>,
    pub user_idx: Vec<u32>,
    pub item_idx: Vec<u32>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<Option<f32>>>,
}

/// Indices of the `n` largest counts, ties to the lower index.
fn top_by_count(counts: &[u32], n: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..counts.len() as u32)
        .filter(|&i| counts[i as usize] > 0)
        .collect();
    idx.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

pub fn build(r: &Ratings, catalog: Option<&Catalog>, n: usize) -> Crosstab {
    let users = top_by_count(&crate::data::user_counts(r), n);
    let items = top_by_count(&crate::data::item_counts(r), n);
    let mut row_of = vec![usize::MAX; r.n_users as usize];
    for (p, &u) in users.iter().enumerate() {
        row_of[u as usize] = p;
    }
    let mut col_of = vec![usize::MAX; r.n_items as usize];
    for (p, &i) in items.iter().enumerate() {
        col_of[i as usize] = p;
    }
    let mut cells = vec![vec![None; items.len()]; users.len()];
    for ((&u, &i), &v) in r.user.iter().zip(&r.item).zip(&r.rating) {
        let (ro, co) = (row_of[u as usize], col_of[i as usize]);
        if ro != usize::MAX && co != usize::MAX {
            cells[ro][co] = Some(v);
        }
    }
    let user_label = |u: u32| match catalog {
        Some(c) if (u as usize) < c.n_users() => c.user_ids.display(u as usize),
        _ => u.to_string(),
    };
    let item_label = |i: u32| -> String {
        match catalog {
            Some(c) if (i as usize) < c.n_items() => c.titles[i as usize]
                .clone()
                .unwrap_or_else(|| c.item_ids.display(i as usize)),
            _ => format!("item {i}"),
        }
    };
    // Titles repeat in MovieLens (remakes with the same name and year); columns must not.
    let mut taken = HashSet::new();
    let item_labels = items
        .iter()
        .map(|&i| {
            let mut label = item_label(i);
            if !taken.insert(label.clone()) {
                label = format!("{label} [{i}]");
                taken.insert(label.clone());
            }
            label
        })
        .collect();
    Crosstab {
        users: users.iter().map(|&u| user_label(u)).collect(),
        items: item_labels,
        user_idx: users,
        item_idx: items,
        cells,
    }
}

impl Crosstab {
    /// user_idx, user_id (original id as text), then one nullable Float32 column per movie.
    pub fn to_batch(&self) -> RecordBatch {
        let mut fields = vec![
            Field::new("user_idx", arrow_schema::DataType::Int64, false),
            Field::new("user_id", arrow_schema::DataType::Utf8, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(
                self.user_idx.iter().map(|&u| u as i64),
            )),
            Arc::new(arrow_array::StringArray::from_iter_values(&self.users)),
        ];
        for (c, title) in self.items.iter().enumerate() {
            fields.push(Field::new(title, arrow_schema::DataType::Float32, true));
            cols.push(Arc::new(Float32Array::from(
                self.cells.iter().map(|row| row[c]).collect::<Vec<_>>(),
            )));
        }
        let schema =
            Arc::new(Schema::new(fields).with_metadata(recpipe_core::schema::metadata(&[])));
        RecordBatch::try_new(schema, cols).expect("columns match the crosstab schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_most_active_users_and_most_rated_items() {
        let r = Ratings {
            user: vec![0, 1, 1, 2, 2, 2],
            item: vec![0, 0, 1, 0, 1, 2],
            rating: vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.5],
            timestamp: None,
            n_users: 3,
            n_items: 3,
        };
        let c = build(&r, None, 2);
        assert_eq!(c.user_idx, [2, 1]);
        assert_eq!(c.item_idx, [0, 1]);
        assert_eq!(
            c.cells,
            vec![vec![Some(4.0), Some(5.0)], vec![Some(2.0), Some(3.0)]]
        );
        let c = build(&r, None, 3);
        assert_eq!(c.cells[2], vec![Some(1.0), None, None]);
        let b = c.to_batch();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.num_columns(), 5);
        assert_eq!(b.column(3).null_count(), 1);
        assert_eq!(b.column(4).null_count(), 2);
    }
}
