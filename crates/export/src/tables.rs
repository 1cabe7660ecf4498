//! Record batches of the exported tables, built against one schema per table so DuckDB,
//! Polars and pandas see the same columns on every run.

use crate::error::ExportError;
use crate::neighbors::Ranked;
use arrow_array::{
    ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array,
    builder::ListBuilder, builder::StringBuilder,
};
use arrow_schema::{DataType, Field, Schema};
use ndarray::ArrayView2;
use recpipe_core::ratings::{Catalog, Ids};
use recpipe_core::schema;
use std::sync::Arc;

pub type Meta = Vec<(&'static str, String)>;

fn batch(
    table: &'static str,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let schema = schema::with_metadata(Schema::new(fields), meta);
    RecordBatch::try_new(schema, columns).map_err(|source| ExportError::Arrow { table, source })
}

fn id_field(name: &str, ids: &Ids) -> Field {
    Field::new(name, schema::id_type(ids.is_numeric()), false)
}

fn u32s(v: impl IntoIterator<Item = u32>) -> ArrayRef {
    Arc::new(UInt32Array::from_iter_values(v))
}

fn titles(catalog: &Catalog, idx: &[u32]) -> ArrayRef {
    Arc::new(StringArray::from_iter(idx.iter().map(|&i| {
        catalog.titles.get(i as usize).and_then(|t| t.as_deref())
    })))
}

/// A FixedSizeList<Float32, k> non-null column holding the rows of `factors`.
pub fn embedding_column(factors: ArrayView2<'_, f32>) -> Result<ArrayRef, ExportError> {
    let k = factors.ncols();
    let values = Float32Array::from_iter_values(factors.iter().copied());
    let field = Arc::new(Field::new_list_field(DataType::Float32, false));
    let list =
        FixedSizeListArray::try_new(field, k as i32, Arc::new(values), None).map_err(|source| {
            ExportError::Arrow {
                table: "embeddings",
                source,
            }
        })?;
    Ok(Arc::new(list))
}

fn bias_column(bias: Option<&[f32]>, n: usize) -> ArrayRef {
    match bias {
        Some(b) => Arc::new(Float32Array::from(b.to_vec())),
        None => Arc::new(Float32Array::from(vec![0.0; n])),
    }
}

/// item_idx, item_id, title, genres, n_ratings, bias, embedding.
pub fn item_embeddings(
    catalog: &Catalog,
    factors: ArrayView2<'_, f32>,
    n_ratings: &[u32],
    bias: Option<&[f32]>,
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let n = factors.nrows();
    let all: Vec<u32> = (0..n as u32).collect();
    let mut genres = ListBuilder::new(StringBuilder::new());
    for g in &catalog.genres {
        for s in g {
            genres.values().append_value(s);
        }
        genres.append(true);
    }
    batch(
        "item_embeddings",
        vec![
            Field::new("item_idx", DataType::UInt32, false),
            id_field("item_id", &catalog.item_ids),
            Field::new("title", DataType::Utf8, true),
            Field::new("genres", schema::genres_type(), false),
            Field::new("n_ratings", DataType::UInt32, false),
            Field::new("bias", DataType::Float32, false),
            Field::new("embedding", schema::embedding_type(factors.ncols()), false),
        ],
        vec![
            u32s(all.iter().copied()),
            catalog.item_ids.to_array(),
            titles(catalog, &all),
            Arc::new(genres.finish()),
            u32s(n_ratings.iter().copied()),
            bias_column(bias, n),
            embedding_column(factors)?,
        ],
        meta,
    )
}

/// user_idx, user_id, bias, embedding.
pub fn user_embeddings(
    catalog: &Catalog,
    factors: ArrayView2<'_, f32>,
    bias: Option<&[f32]>,
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let n = factors.nrows();
    batch(
        "user_embeddings",
        vec![
            Field::new("user_idx", DataType::UInt32, false),
            id_field("user_id", &catalog.user_ids),
            Field::new("bias", DataType::Float32, false),
            Field::new("embedding", schema::embedding_type(factors.ncols()), false),
        ],
        vec![
            u32s(0..n as u32),
            catalog.user_ids.to_array(),
            bias_column(bias, n),
            embedding_column(factors)?,
        ],
        meta,
    )
}

/// Flattens ranked lists into (owner, rank 1-based, idx, score) columns.
fn flatten(owners: &[u32], ranked: &[Ranked]) -> (Vec<u32>, Vec<u32>, Vec<u32>, Vec<f32>) {
    let rows: usize = ranked.iter().map(Vec::len).sum();
    let (mut own, mut rank, mut idx, mut score) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for (&o, list) in owners.iter().zip(ranked) {
        for (r, &(i, s)) in list.iter().enumerate() {
            own.push(o);
            rank.push(r as u32 + 1);
            idx.push(i);
            score.push(s);
        }
    }
    (own, rank, idx, score)
}

/// item_idx, item_id, title, rank, neighbor_idx, neighbor_id, neighbor_title, score.
pub fn similar_items(
    catalog: &Catalog,
    queries: &[u32],
    ranked: &[Ranked],
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let (item, rank, neighbor, score) = flatten(queries, ranked);
    batch(
        "similar_items",
        vec![
            Field::new("item_idx", DataType::UInt32, false),
            id_field("item_id", &catalog.item_ids),
            Field::new("title", DataType::Utf8, true),
            Field::new("rank", DataType::UInt32, false),
            Field::new("neighbor_idx", DataType::UInt32, false),
            id_field("neighbor_id", &catalog.item_ids),
            Field::new("neighbor_title", DataType::Utf8, true),
            Field::new("score", DataType::Float32, false),
        ],
        vec![
            u32s(item.iter().copied()),
            catalog.item_ids.take(&item),
            titles(catalog, &item),
            u32s(rank),
            u32s(neighbor.iter().copied()),
            catalog.item_ids.take(&neighbor),
            titles(catalog, &neighbor),
            Arc::new(Float32Array::from(score)),
        ],
        meta,
    )
}

/// user_idx, user_id, rank, item_idx, item_id, title, score.
pub fn recommendations(
    catalog: &Catalog,
    users: &[u32],
    ranked: &[Ranked],
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let (user, rank, item, score) = flatten(users, ranked);
    batch(
        "recommendations",
        vec![
            Field::new("user_idx", DataType::UInt32, false),
            id_field("user_id", &catalog.user_ids),
            Field::new("rank", DataType::UInt32, false),
            Field::new("item_idx", DataType::UInt32, false),
            id_field("item_id", &catalog.item_ids),
            Field::new("title", DataType::Utf8, true),
            Field::new("score", DataType::Float32, false),
        ],
        vec![
            u32s(user.iter().copied()),
            catalog.user_ids.take(&user),
            u32s(rank),
            u32s(item.iter().copied()),
            catalog.item_ids.take(&item),
            titles(catalog, &item),
            Arc::new(Float32Array::from(score)),
        ],
        meta,
    )
}

/// item_idx, item_id, title, pc1..pcC.
pub fn pca(
    catalog: &Catalog,
    projection: ArrayView2<'_, f32>,
    meta: &Meta,
) -> Result<RecordBatch, ExportError> {
    let n = projection.nrows();
    let all: Vec<u32> = (0..n as u32).collect();
    let mut fields = vec![
        Field::new("item_idx", DataType::UInt32, false),
        id_field("item_id", &catalog.item_ids),
        Field::new("title", DataType::Utf8, true),
    ];
    let mut columns = vec![
        u32s(all.iter().copied()),
        catalog.item_ids.to_array(),
        titles(catalog, &all),
    ];
    for (c, col) in projection.columns().into_iter().enumerate() {
        fields.push(Field::new(format!("pc{}", c + 1), DataType::Float32, false));
        columns.push(Arc::new(Float32Array::from_iter_values(
            col.iter().copied(),
        )));
    }
    batch("pca", fields, columns, meta)
}
