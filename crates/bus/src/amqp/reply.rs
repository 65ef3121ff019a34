//! The consumer's side of a call: the reply goes to the caller's direct reply-to address with
//! the call's correlation id; a call dropped unanswered sends a "no reply" marker instead, so
//! the caller fails at once with [`BusError::NoReply`] rather than at its timeout.

use super::session::NO_REPLY_TYPE;
use super::supervisor::Sessions;
use crate::{BusError, Replier};
use async_trait::async_trait;
use lapin::BasicProperties;

/// Replies to one call.
pub(crate) struct AmqpReplier {
    sessions: Sessions,
    reply_to: String,
    correlation_id: String,
    answered: bool,
}

impl AmqpReplier {
    /// The replier of a delivery, if it is a call (it has a reply address and an id).
    pub(crate) fn for_delivery(
        sessions: &Sessions,
        delivery: &lapin::message::Delivery,
    ) -> Option<AmqpReplier> {
        let reply_to = delivery.properties.reply_to().as_ref()?;
        let correlation_id = delivery.properties.correlation_id().as_ref()?;
        Some(AmqpReplier {
            sessions: sessions.clone(),
            reply_to: reply_to.to_string(),
            correlation_id: correlation_id.to_string(),
            answered: false,
        })
    }
}

async fn send_reply(
    sessions: &Sessions,
    reply_to: &str,
    correlation_id: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), BusError> {
    let session = sessions.current()?;
    let properties = properties.with_correlation_id(correlation_id.into());
    session
        .publish("", reply_to, payload, properties, false)
        .await
        .map_err(|e| BusError::Unavailable(format!("replying: {e}")))?;
    Ok(())
}

#[async_trait]
impl Replier for AmqpReplier {
    async fn reply(mut self: Box<Self>, payload: Vec<u8>) -> Result<(), BusError> {
        self.answered = true;
        send_reply(
            &self.sessions,
            &self.reply_to,
            &self.correlation_id,
            &payload,
            BasicProperties::default(),
        )
        .await
    }
}

impl Drop for AmqpReplier {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let sessions = self.sessions.clone();
        let reply_to = std::mem::take(&mut self.reply_to);
        let correlation_id = std::mem::take(&mut self.correlation_id);
        runtime.spawn(async move {
            let marker = BasicProperties::default().with_type(NO_REPLY_TYPE.into());
            let _ = send_reply(&sessions, &reply_to, &correlation_id, &[], marker).await;
        });
    }
}
