//! Token issue and validation: Fernet encoding, the validated-token cache and revocation.
//!
//! Validation of a token already seen costs one hash-map lookup while the identity data is
//! unchanged (the cache is keyed by the data's generation, so any write — a role removed, a
//! user disabled, a revocation — invalidates every cached entry at once). A token not in the
//! cache is decrypted, checked against the revocation index (hash lookups: O(1) in the number
//! of events) and resolved against the in-memory data.

use crate::data::IdentityData;
use crate::model::*;
use crate::service::Identity;
use crate::unix_now;
use ferrostack_api::{ApiError, AuthContext, NamedRef};
use ferrostack_config::IdentityConfig;
use ferrostack_fernet::{
    DecodedToken, KeyRepository, Scope, TokenFormatter, TokenPayload, default_auth_methods,
};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// Most validated tokens kept; the cache is cleared when it fills.
const CACHE_CAPACITY: usize = 10_000;

/// Revocation events indexed for constant-time checks.
#[derive(Default)]
struct RevocationIndex {
    audit_ids: HashSet<String>,
    users: HashMap<String, f64>,
    projects: HashMap<String, f64>,
    domains: HashMap<String, f64>,
}

impl RevocationIndex {
    fn build(data: &IdentityData) -> Self {
        let mut index = RevocationIndex::default();
        let newest = |map: &mut HashMap<String, f64>, key: &str, at: f64| {
            let entry = map.entry(key.to_string()).or_insert(at);
            *entry = entry.max(at);
        };
        for r in data.revocations.values() {
            if let Some(a) = &r.audit_id {
                index.audit_ids.insert(a.clone());
            }
            if let Some(u) = &r.user_id {
                newest(&mut index.users, u, r.issued_before);
            }
            if let Some(p) = &r.project_id {
                newest(&mut index.projects, p, r.issued_before);
            }
            if let Some(d) = &r.domain_id {
                newest(&mut index.domains, d, r.issued_before);
            }
        }
        index
    }

    /// Whether a token issued at `issued_at` (whole seconds) is revoked. Events carry fractional
    /// times; a token issued in the same second as an event counts as issued before it (issue
    /// waits for the next second in that case, see [`Identity::wait_past_revocations`]).
    fn revokes(
        &self,
        p: &TokenPayload,
        issued_at: u64,
        project: Option<&str>,
        domain: Option<&str>,
    ) -> bool {
        if p.audit_ids
            .first()
            .is_some_and(|a| self.audit_ids.contains(a))
        {
            return true;
        }
        let before = |map: &HashMap<String, f64>, key: Option<&str>| {
            key.and_then(|k| map.get(k))
                .is_some_and(|at| issued_at as f64 <= at.floor())
        };
        before(&self.users, Some(&p.user_id))
            || before(&self.projects, project)
            || before(&self.domains, domain)
    }
}

/// Fernet keys, the validated-token cache and the revocation index.
pub struct TokenCache {
    key_dir: PathBuf,
    formatter: RwLock<Arc<TokenFormatter>>,
    keys_checked_at: AtomicU64,
    keys_mtime: Mutex<Option<SystemTime>>,
    validated: RwLock<HashMap<String, (u64, Arc<AuthContext>)>>,
    revocations: RwLock<(u64, Arc<RevocationIndex>)>,
}

/// Formats Unix seconds as Keystone does (`2026-11-22T16:39:32.000000Z`).
pub fn keystone_time(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs.floor() as i64, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S.000000Z")
        .to_string()
}

impl TokenCache {
    /// Loads the key repository (which `fernet-setup` or `ferrostack up` created).
    pub fn open(config: &IdentityConfig) -> anyhow::Result<TokenCache> {
        let key_dir = config.fernet_key_repository.clone();
        let keys = KeyRepository::load(&key_dir)
            .map_err(|e| anyhow::anyhow!("{e} (run `ferrostack identity fernet-setup`)"))?;
        let formatter = TokenFormatter::new(&keys, default_auth_methods())?;
        let mtime = std::fs::metadata(&key_dir).and_then(|m| m.modified()).ok();
        Ok(TokenCache {
            key_dir,
            formatter: RwLock::new(Arc::new(formatter)),
            keys_checked_at: AtomicU64::new(unix_now() as u64),
            keys_mtime: Mutex::new(mtime),
            validated: RwLock::new(HashMap::new()),
            revocations: RwLock::new((0, Arc::new(RevocationIndex::default()))),
        })
    }

    /// The formatter, re-reading the key repository at most once a second when it changed
    /// (`fernet-rotate` run by an operator while the service runs).
    fn formatter(&self) -> Arc<TokenFormatter> {
        let now = unix_now() as u64;
        if self.keys_checked_at.swap(now, Ordering::Relaxed) != now {
            let mtime = std::fs::metadata(&self.key_dir)
                .and_then(|m| m.modified())
                .ok();
            let mut known = self.keys_mtime.lock().unwrap_or_else(|e| e.into_inner());
            if mtime != *known {
                match KeyRepository::load(&self.key_dir)
                    .map_err(anyhow::Error::from)
                    .and_then(|keys| Ok(TokenFormatter::new(&keys, default_auth_methods())?))
                {
                    Ok(f) => {
                        *self.formatter.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(f);
                        *known = mtime;
                        tracing::info!("fernet key repository reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reloading fernet keys; keeping the previous set")
                    }
                }
            }
        }
        self.formatter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn revocation_index(&self, generation: u64, data: &IdentityData) -> Arc<RevocationIndex> {
        {
            let current = self.revocations.read().unwrap_or_else(|e| e.into_inner());
            if current.0 == generation {
                return current.1.clone();
            }
        }
        let index = Arc::new(RevocationIndex::build(data));
        *self.revocations.write().unwrap_or_else(|e| e.into_inner()) = (generation, index.clone());
        index
    }

    fn cached(&self, token: &str, generation: u64) -> Option<Arc<AuthContext>> {
        let cache = self.validated.read().unwrap_or_else(|e| e.into_inner());
        match cache.get(token) {
            Some((g, ctx)) if *g == generation => Some(ctx.clone()),
            _ => None,
        }
    }

    fn remember(&self, token: &str, generation: u64, ctx: Arc<AuthContext>) {
        let mut cache = self.validated.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(token.to_string(), (generation, ctx));
    }
}

/// Why a token is not valid (all answered as 401 for `X-Auth-Token`, 404 for `X-Subject-Token`).
fn invalid() -> ApiError {
    ApiError::unauthorized_msg("The request you have made requires authentication.")
}

impl Identity {
    /// Validates a token, from the cache when the data has not changed since.
    pub fn validate_token(&self, token: &str) -> Result<Arc<AuthContext>, ApiError> {
        let generation = self.generation();
        if let Some(ctx) = self.tokens.cached(token, generation) {
            if ctx.expires_at_unix > unix_now() {
                return Ok(ctx);
            }
            return Err(invalid());
        }
        let decoded = self
            .tokens
            .formatter()
            .decode(token)
            .map_err(|_| invalid())?;
        if decoded.is_expired(SystemTime::now()) {
            return Err(invalid());
        }
        let data = self.read();
        let index = self.tokens.revocation_index(generation, &data);
        let ctx = Arc::new(self.context_for(&data, &decoded, token, &index)?);
        drop(data);
        self.tokens.remember(token, generation, ctx.clone());
        Ok(ctx)
    }

    /// Encodes a payload into a token and resolves its context (what the issue response shows).
    pub fn issue_token(
        &self,
        payload: TokenPayload,
    ) -> Result<(String, Arc<AuthContext>), ApiError> {
        let formatter = self.tokens.formatter();
        let issued_at = unix_now() as u64;
        let token = formatter
            .encode_at(&payload, issued_at)
            .map_err(ApiError::internal)?;
        let decoded = DecodedToken { payload, issued_at };
        let data = self.read();
        let index = self.tokens.revocation_index(self.generation(), &data);
        let ctx = Arc::new(self.context_for(&data, &decoded, &token, &index)?);
        Ok((token, ctx))
    }

    /// Sleeps past the current second when a revocation event covering `user_id` or
    /// `project_id` fell in it, so a token issued right after a revocation is not caught by it.
    pub async fn wait_past_revocations(&self, user_id: &str, project_id: Option<&str>) {
        let now = unix_now();
        let hit = {
            let data = self.read();
            data.revocations.values().any(|r| {
                r.issued_before.floor() == now.floor()
                    && (r.user_id.as_deref() == Some(user_id)
                        || (project_id.is_some() && r.project_id.as_deref() == project_id))
            })
        };
        if hit {
            tokio::time::sleep(Duration::from_secs_f64(now.floor() + 1.0 - now + 0.001)).await;
        }
    }

    /// Resolves a decoded token against the data: the user, scope and roles must still be valid.
    fn context_for(
        &self,
        data: &IdentityData,
        decoded: &DecodedToken,
        token: &str,
        revocations: &RevocationIndex,
    ) -> Result<AuthContext, ApiError> {
        let p = &decoded.payload;
        let user = data
            .users
            .get(&p.user_id)
            .filter(|u| u.enabled)
            .ok_or_else(invalid)?;
        let user_domain = data
            .domains
            .get(&user.domain_id)
            .filter(|d| d.enabled)
            .ok_or_else(invalid)?;
        let mut ctx = AuthContext {
            token: token.to_string(),
            user: NamedRef {
                id: user.id.clone(),
                name: user.name.clone(),
            },
            user_domain: NamedRef {
                id: user_domain.id.clone(),
                name: user_domain.name.clone(),
            },
            methods: p.methods.clone(),
            audit_ids: p.audit_ids.clone(),
            expires_at: keystone_time(p.expires_at),
            expires_at_unix: p.expires_at.floor(),
            issued_at: keystone_time(decoded.issued_at as f64),
            password_expires_at: user.password_expires_at.clone(),
            ..Default::default()
        };
        let (project_id, app_cred_id) = match &p.scope {
            Scope::Project(id) => (Some(id.as_str()), None),
            Scope::ApplicationCredential {
                project_id,
                app_cred_id,
            } => (Some(project_id.as_str()), Some(app_cred_id)),
            Scope::Domain(id) => {
                let domain = data
                    .domains
                    .get(id)
                    .filter(|d| d.enabled)
                    .ok_or_else(invalid)?;
                ctx.domain = Some(NamedRef {
                    id: domain.id.clone(),
                    name: domain.name.clone(),
                });
                (None, None)
            }
            Scope::System(s) => {
                ctx.system_scope = Some(s.clone());
                (None, None)
            }
            Scope::Unscoped => (None, None),
            Scope::Trust { .. } => return Err(invalid()),
        };
        let mut project_domain_id = None;
        if let Some(pid) = project_id {
            let project = data
                .projects
                .get(pid)
                .filter(|p| p.enabled)
                .ok_or_else(invalid)?;
            let domain = data
                .domains
                .get(&project.domain_id)
                .filter(|d| d.enabled)
                .ok_or_else(invalid)?;
            ctx.project = Some(NamedRef {
                id: project.id.clone(),
                name: project.name.clone(),
            });
            ctx.project_domain = Some(NamedRef {
                id: domain.id.clone(),
                name: domain.name.clone(),
            });
            project_domain_id = Some(domain.id.clone());
        }
        let scope_domain = ctx
            .domain
            .as_ref()
            .map(|d| d.id.clone())
            .or(project_domain_id);
        if revocations.revokes(p, decoded.issued_at, project_id, scope_domain.as_deref()) {
            return Err(invalid());
        }
        let target = match (&p.scope, project_id) {
            (_, Some(pid)) => Some(Target::Project(pid.to_string())),
            (Scope::Domain(d), _) => Some(Target::Domain(d.clone())),
            (Scope::System(_), _) => Some(Target::System),
            _ => None,
        };
        if let Some(target) = target {
            let mut role_ids = data.roles_for(&user.id, &target);
            if let Some(ac_id) = app_cred_id {
                let cred = data
                    .app_creds
                    .get(ac_id)
                    .filter(|c| c.user_id == user.id)
                    .ok_or_else(invalid)?;
                if cred
                    .expires_at
                    .as_deref()
                    .and_then(crate::password::parse_time)
                    .is_some_and(|t| t <= chrono::Utc::now())
                {
                    return Err(invalid());
                }
                let delegated = data.expand_implied(cred.role_ids.clone());
                role_ids.retain(|r| delegated.contains(r));
                ctx.application_credential =
                    Some((cred.id.clone(), cred.name.clone(), !cred.unrestricted));
            }
            if role_ids.is_empty() {
                return Err(invalid());
            }
            ctx.roles = role_ids
                .iter()
                .filter_map(|id| data.roles.get(id))
                .map(|r| NamedRef {
                    id: r.id.clone(),
                    name: r.name.clone(),
                })
                .collect();
        }
        ctx.is_admin_project = ctx.project.as_ref().is_some_and(|p| p.name == "admin")
            && ctx
                .project_domain
                .as_ref()
                .is_some_and(|d| d.id == "default");
        Ok(ctx.with_creds())
    }
}
