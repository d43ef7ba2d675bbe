//! The tape way of classifying a record: the record read into a [`Tape`] (its strings left in
//! the record's text), each schema checked in place, and the command built from the tape. It
//! answers only a record that is a valid, routable command (live or expired); for anything else
//! it answers nothing, and the [`Value`](super::from_value) way classifies the record and words
//! the reason.

use std::cell::RefCell;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::sync::Arc;

use super::schemas::{self, KnownSchema};
use super::tape::{Tape, TapeNode};
use super::{Classified, Command, CommandData, CommandParser, Envelope, Semantics, Tags, expired};

/// Above this many entries a thread's tape gives its memory back after a record (a big
/// record's tape is not kept for the small ones after it).
const TAPE_KEPT: usize = 16 * 1024;
/// Likewise for the buffer a command's data is written to, in bytes.
const TEXT_KEPT: usize = 64 * 1024;

impl CommandParser {
    /// Classifies a record's text as read at `now`, on `tape`: `Some` for a valid, routable
    /// command, `None` for anything the `Value` way is to classify.
    pub(super) fn classify_tape(&self, tape: &mut Tape, text: &str, now: DateTime<Utc>) -> Option<Classified> {
        let classified = self.routable(tape, text, now);
        tape.shrink_above(TAPE_KEPT);
        classified
    }

    fn routable(&self, tape: &mut Tape, text: &str, now: DateTime<Utc>) -> Option<Classified> {
        let root = tape.parse(text).ok()?;
        let (outer, data) = self.known_self_describing(root)?;
        if !self.command.matches(&outer.key) || !outer.is_valid(data) {
            return None;
        }
        let [envelope_node, command_node] = data.members(["envelope", "command"])?;
        let (envelope_schema, envelope_data) = self.known_self_describing(envelope_node?)?;
        if !self.envelope.matches(&envelope_schema.key) || !envelope_schema.is_valid(envelope_data) {
            return None;
        }
        let envelope = envelope(envelope_data)?;
        let (schema, command_data) = self.known_self_describing(command_node?)?;
        let route = self.route_of(&schema.key)?;
        if !schema.is_valid(command_data) {
            return None;
        }
        if let Some(reason) = expired(&envelope, now) {
            return Some(Classified::Expired { reason, command_id: envelope.command_id });
        }
        let data = canonical_data(command_data)?;
        let command = Command { envelope, schema: schema.key.clone(), data };
        Some(Classified::Routable { command: Arc::new(command), route })
    }

    /// A self-describing JSON's schema, if the registry knows it by the URI as written, and its
    /// data.
    fn known_self_describing<'t>(&self, node: TapeNode<'t>) -> Option<(&KnownSchema, TapeNode<'t>)> {
        let [schema, data] = node.members(["schema", "data"])?;
        let schema = self.schemas.known(schema?.str()?)?;
        Some((schema, data?))
    }
}

/// A command's data as its responder gets it, written out of the tape.
fn canonical_data(data: TapeNode<'_>) -> Option<CommandData> {
    thread_local! {
        /// Where each parsing thread writes a command's data before it is copied out.
        static TEXT: RefCell<Vec<u8>> = RefCell::default();
    }
    TEXT.with(|text| {
        let mut text = text.try_borrow_mut().ok()?;
        text.clear();
        data.write_canonical(&mut text);
        let made = CommandData::from_canonical(&text);
        if text.capacity() > TEXT_KEPT {
            *text = Vec::new();
        }
        made
    })
}

/// The envelope's typed fields, from data its schema has found valid (`None`: some field is
/// not what sauna reads, which a custom envelope revision could allow; the `Value` way says
/// which).
fn envelope(data: TapeNode<'_>) -> Option<Envelope> {
    let [command_id, when_created, execution, tags] =
        data.members(["commandId", "whenCreated", "execution", "tags"])?;
    let command_id = schemas::parse_uuid(command_id?.str()?)?;
    let when_created = schemas::parse_date_time(when_created?.str()?)?;
    let [semantics, time_to_live] = execution?.members(["semantics", "timeToLive"])?;
    let semantics = match semantics?.str()? {
        "AT_LEAST_ONCE" => Semantics::AtLeastOnce,
        _ => return None,
    };
    let time_to_live = time_to_live?;
    let time_to_live =
        if time_to_live.is_null_value() { None } else { Some(Duration::from_millis(time_to_live.u64()?)) };
    let tags = tags?.object()?.map(|(name, value)| Some((name, value.str()?))).collect::<Option<Tags>>()?;
    Some(Envelope { command_id, when_created, semantics, time_to_live, tags })
}
