//! The broker's URL: parsed once, with defaults for the options this bus relies on, and a
//! description without the password for logs and errors.

use crate::BusError;
use lapin::uri::{AMQPScheme, AMQPUri};

/// Seconds between AMQP heartbeats unless the URL sets `heartbeat`: a broker that vanished
/// without closing the socket is noticed after two missed beats.
const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// Where the bus connects.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) uri: AMQPUri,
    /// `scheme://user@host:port/vhost`: never the password.
    pub(crate) described: String,
}

impl Target {
    /// Parses `amqp://user:password@host:port/vhost?heartbeat=N` (or `amqps://`).
    pub(crate) fn parse(url: &str) -> Result<Target, BusError> {
        let mut uri: AMQPUri = url
            .parse()
            .map_err(|e: String| BusError::Invalid(format!("AMQP URL {}: {e}", redact(url))))?;
        uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
        let scheme = match uri.scheme {
            AMQPScheme::AMQP => "amqp",
            AMQPScheme::AMQPS => "amqps",
        };
        let described = format!(
            "{scheme}://{}@{}:{}/{}",
            uri.authority.userinfo.username,
            uri.authority.host,
            uri.authority.port,
            uri.vhost.replace('%', "%25").replace('/', "%2f"),
        );
        Ok(Target { uri, described })
    }
}

/// `url` with anything between `://` and the last `@` cut down to the user name.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => "(unparsable)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_has_no_password_and_heartbeat_defaults() {
        let t = Target::parse("amqp://fs:s3cret@broker:5673/%2f").unwrap();
        assert_eq!(t.described, "amqp://fs@broker:5673/%2f");
        assert_eq!(t.uri.authority.userinfo.password, "s3cret");
        assert_eq!(t.uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECS));
        let t = Target::parse("amqp://fs:x@broker/cloud?heartbeat=30").unwrap();
        assert_eq!(t.described, "amqp://fs@broker:5672/cloud");
        assert_eq!(t.uri.query.heartbeat, Some(30));
    }

    #[test]
    fn malformed_urls_are_refused_without_their_password() {
        let e = Target::parse("amqp://fs:s3cret@broker:notaport/")
            .err()
            .unwrap()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(e.contains("fs:***@"), "{e}");
    }
}
