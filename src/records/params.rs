//! List parameters (`sort`, `limit`, `page`, `select`) parsed into checked values (`filter` is
//! compiled by `rules`, `expand` parsed by `expand`).

use super::Error;
use crate::db::Column;
use crate::schema::Collection;

/// Most sort keys a list may name.
pub const MAX_SORT_KEYS: usize = 5;

/// The highest `page` a list accepts (far beyond any table, and small enough that the offset
/// `(page - 1) * limit` cannot overflow).
pub const MAX_PAGE: u64 = 1_000_000_000;

/// List parameters as they arrive (query-string values); [`ListQuery::parse`] checks them.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub page: Option<String>,
    pub select: Option<String>,
    pub expand: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub sort: Vec<(Column, bool)>,
    pub limit: u64,
    pub page: u64,
    /// `None` = every readable field.
    pub select: Option<Vec<Column>>,
}

/// The one error for a field a caller may not name: unknown, hidden and unreadable fields all read
/// the same, so none can be told apart.
pub(super) fn unknown_field(name: &str) -> Error {
    Error::BadRequest(format!("unknown field \"{name}\""))
}

/// Resolves a field name a caller may use, honouring `readable`.
pub fn column(
    collection: &Collection,
    name: &str,
    readable: &dyn Fn(usize) -> bool,
) -> Result<Column, Error> {
    match name {
        "id" => Ok(Column::Id),
        "createdAt" => Ok(Column::CreatedAt),
        "updatedAt" => Ok(Column::UpdatedAt),
        _ => collection
            .fields
            .iter()
            .position(|f| f.name == name)
            .filter(|&i| readable(i))
            .map(Column::Field)
            .ok_or_else(|| unknown_field(name)),
    }
}

/// A query-string integer: decimal digits only (Rust's parser also takes a leading `+`, which the
/// OpenAPI document's `integer` does not).
fn whole_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl ListQuery {
    /// # Errors
    /// `BadRequest` naming the first bad parameter.
    pub fn parse(
        params: &ListParams,
        collection: &Collection,
        max_limit: u64,
        readable: &dyn Fn(usize) -> bool,
    ) -> Result<Self, Error> {
        let limit = match params.limit.as_deref() {
            None => 20.min(max_limit),
            Some(text) => match whole_number(text) {
                Some(n) if (1..=max_limit).contains(&n) => n,
                _ => {
                    return Err(Error::BadRequest(format!(
                        "limit must be an integer from 1 to {max_limit}"
                    )));
                }
            },
        };
        let page = match params.page.as_deref() {
            None => 1,
            Some(text) => match whole_number(text) {
                Some(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(Error::BadRequest(format!(
                        "page must be an integer from 1 to {MAX_PAGE}"
                    )));
                }
            },
        };
        let sort = match params.sort.as_deref() {
            None => vec![(Column::CreatedAt, true)],
            Some(text) => {
                // No trimming: the OpenAPI document states the exact grammar (a pattern), and the
                // server accepts exactly what it allows.
                let keys: Vec<&str> = text.split(',').collect();
                if keys.len() > MAX_SORT_KEYS {
                    return Err(Error::BadRequest(format!(
                        "sort takes at most {MAX_SORT_KEYS} fields"
                    )));
                }
                let mut sort = Vec::with_capacity(keys.len());
                for key in keys {
                    let (name, descending) = match key.strip_prefix('-') {
                        Some(name) => (name, true),
                        None => (key.strip_prefix('+').unwrap_or(key), false),
                    };
                    if name.is_empty() {
                        return Err(Error::BadRequest("sort has an empty field name".into()));
                    }
                    let column = column(collection, name, readable)?;
                    if let Column::Field(i) = column
                        && collection.fields[i].is_list()
                    {
                        return Err(Error::BadRequest(format!(
                            "cannot sort by \"{name}\": it is a list of ids (a to-many relation)"
                        )));
                    }
                    sort.push((column, descending));
                }
                sort
            }
        };
        let select = match params.select.as_deref() {
            None => None,
            Some(text) => {
                let mut columns = vec![Column::Id];
                for name in text.split(',') {
                    if name.is_empty() {
                        return Err(Error::BadRequest("select has an empty field name".into()));
                    }
                    let column = column(collection, name, readable)?;
                    if !columns.contains(&column) {
                        columns.push(column);
                    }
                }
                Some(columns)
            }
        };
        Ok(Self {
            sort,
            limit,
            page,
            select,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, build_schema};

    fn posts() -> Collection {
        let table: toml::Table = toml::from_str(
            r#"
            [fields]
            title = { type = "string" }
            secret = { type = "string", hidden = true }
            "#,
        )
        .unwrap();
        let schema = build_schema(vec![Source {
            file: "t".into(),
            prefix: String::new(),
            slug: Some("posts".into()),
            table,
        }])
        .unwrap();
        schema.collections[0].clone()
    }

    fn parse(
        sort: Option<&str>,
        limit: Option<&str>,
        page: Option<&str>,
        select: Option<&str>,
    ) -> Result<ListQuery, String> {
        let c = posts();
        let visible = |i: usize| !c.fields[i].hidden;
        let params = ListParams {
            filter: None,
            sort: sort.map(Into::into),
            limit: limit.map(Into::into),
            page: page.map(Into::into),
            select: select.map(Into::into),
            expand: None,
        };
        ListQuery::parse(&params, &c, 100, &visible).map_err(|e| e.to_string())
    }

    #[test]
    fn parameter_table() {
        let ok = parse(Some("-title,id"), Some("5"), Some("2"), Some("title")).unwrap();
        assert_eq!(ok.sort, vec![(Column::Field(0), true), (Column::Id, false)]);
        assert_eq!((ok.limit, ok.page), (5, 2));
        assert_eq!(ok.select, Some(vec![Column::Id, Column::Field(0)]));
        let default = parse(None, None, None, None).unwrap();
        assert_eq!(
            (default.sort, default.limit, default.page),
            (vec![(Column::CreatedAt, true)], 20, 1)
        );

        let errors = [
            (
                parse(Some("secret"), None, None, None),
                "unknown field \"secret\"",
            ),
            (
                parse(Some("nope"), None, None, None),
                "unknown field \"nope\"",
            ),
            (
                parse(None, None, None, Some("secret")),
                "unknown field \"secret\"",
            ),
            (
                parse(Some("a,b,c,d,e,f"), None, None, None),
                "sort takes at most 5 fields",
            ),
            (
                parse(Some("-"), None, None, None),
                "sort has an empty field name",
            ),
            (
                parse(Some(""), None, None, None),
                "sort has an empty field name",
            ),
            (
                parse(Some("title, id"), None, None, None),
                "unknown field \" id\"",
            ),
            (
                parse(None, None, None, Some("")),
                "select has an empty field name",
            ),
            (
                parse(None, None, None, Some("title,")),
                "select has an empty field name",
            ),
            (
                parse(None, None, None, Some(" title")),
                "unknown field \" title\"",
            ),
            (
                parse(None, Some("101"), None, None),
                "limit must be an integer from 1 to 100",
            ),
            (
                parse(None, Some("0"), None, None),
                "limit must be an integer from 1 to 100",
            ),
            (
                parse(None, Some("x"), None, None),
                "limit must be an integer from 1 to 100",
            ),
            (
                parse(None, None, Some("0"), None),
                "page must be an integer from 1 to 1000000000",
            ),
            (
                parse(None, Some("+5"), None, None),
                "limit must be an integer from 1 to 100",
            ),
            (
                parse(None, None, Some("-1"), None),
                "page must be an integer from 1 to 1000000000",
            ),
        ];
        for (got, expected) in errors {
            assert_eq!(got.unwrap_err(), expected);
        }
    }
}
