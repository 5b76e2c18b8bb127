//! What arrives on the transfer queue ([`Message`]): S3's event notifications, continuations
//! a run sends itself when its time is up, and the test event S3 sends when notifications
//! are configured. One typed body, read with serde; the wire format is S3's, and for a
//! continuation `{"continue_transfer":{"key":...}}`.

use anyhow::Context;
pub use filestore_shared::queue::ContinueTransfer;
use serde::{Deserialize, Deserializer};

use crate::decode_key;

/// A message on the transfer queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// S3's check that its notifications reach the queue: announces nothing.
    Test,
    /// Continue the transfer of an object, which a run stopped at its time limit.
    Continue(ContinueTransfer),
    /// An S3 event notification.
    Event(Notification),
}

impl Message {
    /// The decoded keys of the objects this message announces as created, or whose transfer
    /// it continues.
    pub fn created_keys(self) -> Vec<String> {
        match self {
            Self::Test => Vec::new(),
            Self::Continue(c) => vec![c.key],
            Self::Event(event) => event
                .records
                .into_iter()
                .filter(|r| r.event_name.starts_with("ObjectCreated"))
                .map(|r| decode_key(&r.s3.object.key))
                .collect(),
        }
    }
}

/// What tells the kinds of message apart: S3's test event names itself in `Event`, a
/// continuation has `continue_transfer`, anything else is read as an event notification.
impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        enum EventName {
            #[serde(rename = "s3:TestEvent")]
            Test,
            #[serde(other)]
            Other,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "Event")]
            event: Option<EventName>,
            // Present means a continuation, which must then be whole (`null` is not one).
            #[serde(default, deserialize_with = "present")]
            continue_transfer: Option<ContinueTransfer>,
            #[serde(rename = "Records", default)]
            records: Vec<NotificationRecord>,
        }
        fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContinueTransfer>, D::Error> {
            ContinueTransfer::deserialize(d).map(Some)
        }
        let body = Body::deserialize(d)?;
        Ok(match (body.event, body.continue_transfer) {
            (Some(EventName::Test), _) => Self::Test,
            (_, Some(continuation)) => Self::Continue(continuation),
            _ => Self::Event(Notification {
                records: body.records,
            }),
        })
    }
}

/// The part of an S3 event notification we use. Deliberately lenient: S3-compatible stores
/// and emulators differ in the rest (moto's `eventTime` has no time zone, and it omits
/// `userIdentity`), and none of it decides anything here.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Notification {
    #[serde(rename = "Records", default)]
    pub records: Vec<NotificationRecord>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    #[serde(default)]
    pub event_name: String,
    pub s3: NotificationEntity,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct NotificationEntity {
    pub object: NotificationObject,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct NotificationObject {
    /// URL-encoded, as S3 sends it.
    pub key: String,
}

/// The decoded keys of the objects a message announces as created, or whose transfer it
/// continues. The S3 test event announces none.
///
/// # Errors
/// A body that is neither an S3 event notification nor a continuation (a poison message).
pub fn created_keys(body: &str) -> anyhow::Result<Vec<String>> {
    let message: Message = serde_json::from_str(body)
        .context("message body is neither an S3 event nor a continuation")?;
    Ok(message.created_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Requeue;

    const FILE_KEY: &str =
        "files/01a2149b-0ba3-759c-99d7-601239ba95c5/01a2149b-0ca7-73d6-bef5-d1e38acbe80c";

    #[test]
    fn events_from_aws_and_moto_both_parse() {
        for body in [
            include_str!("../tests/data/aws-object-created.json"),
            include_str!("../tests/data/moto-object-created.json"),
        ] {
            assert_eq!(created_keys(body).unwrap(), [FILE_KEY]);
        }
    }

    #[test]
    fn test_events_announce_nothing_and_garbage_is_an_error() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00.000Z","Bucket":"b"}"#;
        assert!(created_keys(test_event).unwrap().is_empty());
        assert!(created_keys("not json").is_err());
        assert!(created_keys(r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#).is_err());
        let removed =
            r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"object":{"key":"k"}}}]}"#;
        assert!(created_keys(removed).unwrap().is_empty());
    }

    #[test]
    fn continuations_name_their_key_unencoded() {
        let key = format!("{FILE_KEY} + %");
        assert_eq!(created_keys(&Requeue::body(&key)).unwrap(), [key]);
        assert!(created_keys(r#"{"continue_transfer":{}}"#).is_err());
        assert!(created_keys(r#"{"continue_transfer":null}"#).is_err());
    }

    /// The continuation's wire format, which runs of other versions read.
    #[test]
    fn a_continuation_is_one_key_under_continue_transfer() {
        assert_eq!(
            Requeue::body("files/a b"),
            r#"{"continue_transfer":{"key":"files/a b"}}"#
        );
        assert_eq!(
            serde_json::from_str::<Message>(r#"{"continue_transfer":{"key":"k"}}"#).unwrap(),
            Message::Continue(ContinueTransfer { key: "k".into() })
        );
    }
}
