//! Glance v2 (images) for Ferrostack. Work in progress (issue 3): so far only the default
//! policy rules; the API is not mounted yet.

pub mod policies;

/// Every default policy rule of the image service.
pub fn default_rules() -> Vec<ferrostack_policy::RuleDefault> {
    policies::IMAGE_RULES.to_vec()
}
