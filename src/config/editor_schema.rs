//! The editor schemas (`lucent schema`): JSON Schema 2020-12 of `lucent.toml` and of a
//! collection file, generated from the raw types the loader deserializes (`raw.rs`), with the
//! parts serde types cannot say from `json_schema`.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value as Json, json};

use super::raw::{RawCollection, RawConfig};

/// The schema of `lucent.toml`.
pub fn lucent_toml() -> Json {
    generate::<RawConfig>()
}

/// The schema of a collection file (`schemas/<slug>.toml`).
pub fn collection_file() -> Json {
    generate::<RawCollection>()
}

fn generate<T: JsonSchema>() -> Json {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    without_null(&mut schema);
    schema
}

/// TOML has no null: an optional key is one that may be absent, which the `required` lists
/// already say, so `null` is taken out of every type schemars gave an `Option`.
fn without_null(schema: &mut Json) {
    match schema {
        Json::Object(object) => {
            if let Some(Json::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    object.insert("type".into(), only);
                }
            }
            if object.get("default") == Some(&Json::Null) {
                object.remove("default");
            }
            if let Some(Json::Array(choices)) = object.get_mut("anyOf") {
                choices.retain(|choice| choice.get("type") != Some(&json!("null")));
                if choices.len() == 1 {
                    let only = choices.remove(0);
                    object.remove("anyOf");
                    if let Json::Object(only) = only {
                        for (key, value) in only {
                            object.entry(key).or_insert(value);
                        }
                    }
                }
            }
            object.values_mut().for_each(without_null);
        }
        Json::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}
