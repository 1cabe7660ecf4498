//! Schemas of the shared tables (see docs/ARCHITECTURE.md). Stages build their record batches
//! against these so every artifact of a kind has the same columns and types.

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::collections::HashMap;
use std::sync::Arc;

/// Schema metadata keys.
pub const META_VERSION: &str = "recpipe.version";
pub const META_N_USERS: &str = "recpipe.n_users";
pub const META_N_ITEMS: &str = "recpipe.n_items";
pub const META_EMBEDDING_DIM: &str = "recpipe.embedding_dim";
pub const META_MODEL_KEY: &str = "recpipe.model_key";

/// Metadata recorded on every table: the recpipe version plus `extra`.
pub fn metadata(extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert(META_VERSION.to_string(), crate::VERSION.to_string());
    for (k, v) in extra {
        m.insert((*k).to_string(), v.clone());
    }
    m
}

/// ratings / train / valid / test: user_idx u32, item_idx u32, rating f32, timestamp i64 (nullable).
pub fn ratings() -> Schema {
    Schema::new(vec![
        Field::new("user_idx", DataType::UInt32, false),
        Field::new("item_idx", DataType::UInt32, false),
        Field::new("rating", DataType::Float32, false),
        Field::new("timestamp", DataType::Int64, true),
    ])
}

/// Original ids are Int64 when every id in the source is an integer (MovieLens), Utf8 otherwise.
pub fn id_type(numeric: bool) -> DataType {
    if numeric {
        DataType::Int64
    } else {
        DataType::Utf8
    }
}

/// users: user_idx, user_id, n_ratings, mean_rating, and demographics when the source has them.
pub fn users(numeric_ids: bool, demographics: bool) -> Schema {
    let mut fields = vec![
        Field::new("user_idx", DataType::UInt32, false),
        Field::new("user_id", id_type(numeric_ids), false),
        Field::new("n_ratings", DataType::UInt32, false),
        Field::new("mean_rating", DataType::Float32, false),
    ];
    if demographics {
        fields.extend([
            Field::new("gender", DataType::Utf8, true),
            Field::new("age", DataType::Int32, true),
            Field::new("occupation", DataType::Utf8, true),
            Field::new("zip", DataType::Utf8, true),
        ]);
    }
    Schema::new(fields)
}

pub fn genres_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// items: item_idx, item_id, title, year, genres list<utf8>, n_ratings, mean_rating.
pub fn items(numeric_ids: bool) -> Schema {
    Schema::new(vec![
        Field::new("item_idx", DataType::UInt32, false),
        Field::new("item_id", id_type(numeric_ids), false),
        Field::new("title", DataType::Utf8, true),
        Field::new("year", DataType::Int16, true),
        Field::new("genres", genres_type(), false),
        Field::new("n_ratings", DataType::UInt32, false),
        Field::new("mean_rating", DataType::Float32, false),
    ])
}

/// history: one row per epoch of training.
pub fn history() -> Schema {
    Schema::new(vec![
        Field::new("epoch", DataType::UInt32, false),
        Field::new("train_loss", DataType::Float64, false),
        Field::new("valid_rmse", DataType::Float64, true),
        Field::new("valid_mae", DataType::Float64, true),
        // Ranking models (ease, ials, bpr): precision@10 on valid (null for rating models).
        Field::new("valid_precision_at_10", DataType::Float64, true),
        Field::new("seconds", DataType::Float64, false),
        Field::new("ratings_per_s", DataType::Float64, false),
        Field::new("lr", DataType::Float64, false),
        // The device the epoch trained on: "cpu", "cuda:0", ...
        Field::new("device", DataType::Utf8, false),
    ])
}

/// A FixedSizeList<Float32, k> non-null embedding column type.
pub fn embedding_type(k: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, false)),
        k as i32,
    )
}

pub fn with_metadata(schema: Schema, extra: &[(&str, String)]) -> SchemaRef {
    Arc::new(schema.with_metadata(metadata(extra)))
}
