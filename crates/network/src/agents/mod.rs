//! The server side of the agents' RPC (Neutron's ML2 `rpc.py` and `agents_db.py`): each host's
//! network agent asks [`rpc::SERVER_QUEUE`] for its desired state ([`crate::host_state`]) and
//! reports what it wired; the server turns reports into port status (`ACTIVE`/`DOWN`), agent
//! rows (`/v2.0/agents`) and Nova's `network-vif-plugged` events ([`VifNotifier`]).

pub mod rpc;
pub mod server;
pub mod store;

pub use server::{ServerOptions, VifNotifier, start};
