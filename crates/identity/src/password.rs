//! Passwords: bcrypt hashing off the async runtime, and Keystone's PCI-DSS rules (lockout,
//! expiry, history, minimum age, complexity regex).

use crate::model::User;
use chrono::{DateTime, Duration, Utc};
use ferrostack_api::ApiError;
use ferrostack_config::IdentityConfig;

/// Hashes `password` with bcrypt at `cost` on a blocking thread.
pub async fn hash(password: String, cost: u32) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Checks `password` against a bcrypt `hash` on a blocking thread (bcrypt compares in constant
/// time).
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Parses a stored timestamp.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Keystone's user option that exempts a user from password expiry.
const IGNORE_EXPIRY: &str = "ignore_password_expiry";
/// Keystone's user option that exempts a user from lockout.
const IGNORE_LOCKOUT: &str = "ignore_lockout_failure_attempts";

fn option_true(user: &User, name: &str) -> bool {
    user.options
        .get(name)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Whether the user is locked out now.
pub fn is_locked_out(user: &User, config: &IdentityConfig, now: DateTime<Utc>) -> bool {
    if config.lockout_failure_attempts == 0 || option_true(user, IGNORE_LOCKOUT) {
        return false;
    }
    if user.failed_auth_count < config.lockout_failure_attempts {
        return false;
    }
    match user.failed_auth_at.as_deref().and_then(parse_time) {
        Some(at) => now < at + Duration::seconds(config.lockout_duration as i64),
        None => true,
    }
}

/// Whether the user's password has expired.
pub fn is_expired(user: &User, now: DateTime<Utc>) -> bool {
    if option_true(user, IGNORE_EXPIRY) {
        return false;
    }
    user.password_expires_at
        .as_deref()
        .and_then(parse_time)
        .is_some_and(|at| at <= now)
}

/// The expiry to store for a password set now.
pub fn expiry_for_new_password(
    user: &User,
    config: &IdentityConfig,
    now: DateTime<Utc>,
) -> Option<String> {
    if config.password_expires_days == 0 || option_true(user, IGNORE_EXPIRY) {
        return None;
    }
    Some(crate::format_time(
        now + Duration::days(config.password_expires_days as i64),
    ))
}

/// Checks a new password against the complexity regex (400 when it does not match).
pub fn check_complexity(password: &str, config: &IdentityConfig) -> Result<(), ApiError> {
    if config.password_regex.is_empty() {
        return Ok(());
    }
    let re = regex::Regex::new(&config.password_regex).map_err(ApiError::internal)?;
    if re.is_match(password) {
        return Ok(());
    }
    let mut message =
        String::from("Password validation error: The password does not meet the requirements");
    if !config.password_regex_description.is_empty() {
        message.push_str(": ");
        message.push_str(&config.password_regex_description);
    }
    message.push('.');
    Err(ApiError::bad_request(message))
}

/// Rejects a self-service change made sooner than the minimum password age.
pub fn check_minimum_age(
    user: &User,
    config: &IdentityConfig,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if config.minimum_password_age == 0 {
        return Ok(());
    }
    let Some(created) = user.password_created_at.as_deref().and_then(parse_time) else {
        return Ok(());
    };
    if now < created + Duration::days(config.minimum_password_age as i64) {
        return Err(ApiError::bad_request(format!(
            "You cannot change your password at this time due to the minimum password age. \
             Once you change your password, it must be used for {} day(s) before it can be changed.",
            config.minimum_password_age
        )));
    }
    Ok(())
}

/// Rejects reuse of the current or a recent password (`unique_last_password_count`).
pub async fn check_history(
    user: &User,
    password: &str,
    config: &IdentityConfig,
) -> Result<(), ApiError> {
    let count = config.unique_last_password_count as usize;
    if count == 0 {
        return Ok(());
    }
    let recent = user
        .password_hash
        .iter()
        .chain(user.password_history.iter())
        .take(count);
    for hash in recent {
        if verify(password.to_string(), hash.clone()).await {
            return Err(ApiError::bad_request(format!(
                "Password validation error: The new password cannot be identical to a previous password. \
                 The total number which includes the new password must be unique is {count}."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn user() -> User {
        User {
            id: "u".into(),
            name: "u".into(),
            domain_id: "default".into(),
            enabled: true,
            default_project_id: None,
            description: None,
            extra: Map::new(),
            options: Map::new(),
            password_hash: None,
            password_created_at: None,
            password_expires_at: None,
            password_history: vec![],
            failed_auth_count: 0,
            failed_auth_at: None,
            created_at: None,
            last_active_at: None,
        }
    }

    #[test]
    fn lockout_lasts_for_the_duration() {
        let config = IdentityConfig {
            lockout_failure_attempts: 3,
            lockout_duration: 60,
            ..Default::default()
        };
        let now = Utc::now();
        let mut u = user();
        u.failed_auth_count = 3;
        u.failed_auth_at = Some(crate::format_time(now));
        assert!(is_locked_out(&u, &config, now));
        assert!(!is_locked_out(&u, &config, now + Duration::seconds(61)));
        u.options.insert(IGNORE_LOCKOUT.into(), true.into());
        assert!(!is_locked_out(&u, &config, now));
        assert!(!is_locked_out(&user(), &IdentityConfig::default(), now));
    }

    #[test]
    fn expiry_and_complexity() {
        let now = Utc::now();
        let config = IdentityConfig {
            password_expires_days: 1,
            password_regex: "^.{8,}$".into(),
            password_regex_description: "at least 8 characters".into(),
            ..Default::default()
        };
        let mut u = user();
        u.password_expires_at = expiry_for_new_password(&u, &config, now);
        assert!(!is_expired(&u, now));
        assert!(is_expired(&u, now + Duration::days(2)));
        let e = check_complexity("short", &config).unwrap_err();
        assert!(e.message.contains("at least 8 characters"));
        assert!(check_complexity("long enough", &config).is_ok());
    }

    #[tokio::test]
    async fn history_rejects_recent_passwords() {
        let config = IdentityConfig {
            unique_last_password_count: 2,
            ..Default::default()
        };
        let mut u = user();
        u.password_hash = Some(hash("new-one".into(), 4).await.unwrap());
        u.password_history = vec![
            hash("old-one".into(), 4).await.unwrap(),
            hash("older".into(), 4).await.unwrap(),
        ];
        assert!(check_history(&u, "new-one", &config).await.is_err());
        assert!(check_history(&u, "old-one", &config).await.is_err());
        assert!(check_history(&u, "older", &config).await.is_ok());
    }
}
