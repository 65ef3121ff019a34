//! `GET /allocation_candidates` (1.10+, spec §7).

use super::{Ctx, Mv, R, State, enforce};
use axum::extract::RawQuery;
use ferrostack_api::Auth;

pub(crate) async fn list(State(p): Ctx, auth: Auth, v: Mv, RawQuery(raw): RawQuery) -> R {
    v.need(10)?;
    enforce(&auth, "placement:allocation_candidates:list")?;
    crate::candidates::handle(&p, &v, raw.as_deref()).await
}
