//! `limit` / `marker` pagination with `next` links.

use crate::ApiError;

/// The parsed `limit` and `marker` of a list request.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Most items to return (already capped at the service's maximum).
    pub limit: Option<usize>,
    /// Id of the last item of the previous page.
    pub marker: Option<String>,
}

impl PageRequest {
    /// Reads `limit` and `marker` from query pairs; `max_limit` caps the page size.
    pub fn from_query(query: &[(String, String)], max_limit: usize) -> Result<Self, ApiError> {
        let mut page = PageRequest::default();
        for (key, value) in query {
            match key.as_str() {
                "limit" => {
                    let limit: i64 = value.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "Invalid limit {value:?}: must be a non-negative integer."
                        ))
                    })?;
                    if limit < 0 {
                        return Err(ApiError::bad_request(format!(
                            "Invalid limit {limit}: must be a non-negative integer."
                        )));
                    }
                    page.limit = Some((limit as usize).min(max_limit));
                }
                "marker" => page.marker = Some(value.clone()),
                _ => {}
            }
        }
        Ok(page)
    }

    /// Applies the page to items already in their final order. Returns the page and, when more
    /// items follow, the marker of the next page. An unknown marker is a 400, as upstream.
    pub fn apply<T>(
        &self,
        items: Vec<T>,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<(Vec<T>, Option<String>), ApiError> {
        let start = match &self.marker {
            None => 0,
            Some(marker) => {
                items
                    .iter()
                    .position(|item| id_of(item) == marker)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("Marker {marker} could not be found."))
                    })?
                    + 1
            }
        };
        let mut rest: Vec<T> = items.into_iter().skip(start).collect();
        match self.limit {
            Some(limit) if rest.len() > limit => {
                rest.truncate(limit);
                let next = rest.last().map(|item| id_of(item).to_string());
                Ok((rest, next))
            }
            _ => Ok((rest, None)),
        }
    }
}

/// The URL of the next page: `base` (scheme, host and path) with the original query, its
/// `marker` replaced by `next_marker`.
pub fn next_link(base: &str, query: &[(String, String)], next_marker: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut parts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != "marker")
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect();
    parts.push(format!(
        "marker={}",
        utf8_percent_encode(next_marker, NON_ALPHANUMERIC)
    ));
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pages_walk_the_whole_list() {
        let items: Vec<String> = (0..5).map(|i| format!("id{i}")).collect();
        let mut marker = None;
        let mut seen = Vec::new();
        loop {
            let req = PageRequest {
                limit: Some(2),
                marker: marker.clone(),
            };
            let (page, next) = req.apply(items.clone(), |s| s.as_str()).unwrap();
            seen.extend(page);
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn bad_limit_and_unknown_marker_are_400() {
        assert!(PageRequest::from_query(&q(&[("limit", "-1")]), 1000).is_err());
        assert!(PageRequest::from_query(&q(&[("limit", "x")]), 1000).is_err());
        assert_eq!(
            PageRequest::from_query(&q(&[("limit", "5000")]), 1000)
                .unwrap()
                .limit,
            Some(1000)
        );
        let req = PageRequest {
            limit: None,
            marker: Some("nope".into()),
        };
        assert_eq!(
            req.apply(vec!["a".to_string()], |s| s.as_str())
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn next_link_keeps_filters_and_replaces_marker() {
        let link = next_link(
            "http://h/v2/images",
            &q(&[("limit", "2"), ("marker", "old"), ("name", "a b")]),
            "m1",
        );
        assert_eq!(link, "http://h/v2/images?limit=2&name=a%20b&marker=m1");
    }
}
