//! Request bodies: size-limited JSON parsing and JSON-schema validation with precise messages.

use crate::ApiError;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request body that failed validation; the message names the field and the rule.
#[derive(Debug, Clone)]
pub struct ValidationError(pub String);

/// A compiled JSON schema for one request body.
pub struct Schema {
    validator: jsonschema::Validator,
}

impl Schema {
    /// Compiles a schema. Schemas are static program text, so an invalid one is a bug: panics.
    pub fn new(schema: Value) -> Self {
        let validator = jsonschema::validator_for(&schema).expect("request schema must be valid");
        Schema { validator }
    }

    /// Checks `value`, reporting the first violation as Keystone and Nova word it:
    /// `Invalid input for field 'user/name': 1 is not of type 'string'`.
    pub fn validate(&self, value: &Value) -> Result<(), ValidationError> {
        match self.validator.iter_errors(value).next() {
            None => Ok(()),
            Some(error) => {
                let path = error.instance_path().to_string();
                let field = path.trim_start_matches('/');
                let message = if field.is_empty() {
                    format!("Invalid input for the request body: {error}")
                } else {
                    format!("Invalid input for field '{field}': {error}")
                };
                Err(ValidationError(message))
            }
        }
    }

    /// Validates, then deserializes into `T` (whose own errors become 400s too).
    pub fn parse<T: DeserializeOwned>(&self, value: Value) -> Result<T, ApiError> {
        self.validate(&value)?;
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad_request(format!("Invalid input: {e}")))
    }
}

/// A JSON request body, parsed within the router's body size limit (413 above it).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            ApiError::new(status, rejection.body_text())
        })?;
        if !content_type.starts_with("application/") || !content_type.contains("json") {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported Content-Type: {content_type}"),
            ));
        }
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "The request body is empty; a JSON object is expected.",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("Malformed JSON in request body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_name_the_field() {
        let schema = Schema::new(json!({
            "type": "object",
            "properties": {"user": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
            "required": ["user"],
        }));
        let err = schema.validate(&json!({"user": {"name": 1}})).unwrap_err();
        assert_eq!(
            err.0,
            "Invalid input for field 'user/name': 1 is not of type \"string\""
        );
        let err = schema.validate(&json!({})).unwrap_err();
        assert!(
            err.0.contains("\"user\" is a required property"),
            "{}",
            err.0
        );
        assert!(schema.validate(&json!({"user": {"name": "x"}})).is_ok());
    }
}
