//! Conversions between wire (proto) messages and domain types.

use crate::proto as pb;
use crate::ring::{Autoscaled, RingDescription, RingMember};

/// A ring description in wire form, with per-member extras (state,
/// incarnation, hints pending) from `extra`.
pub fn ring_to_proto(
    desc: &RingDescription,
    extra: impl Fn(&str) -> (String, u64, u64),
) -> pb::RingDescription {
    let member = |m: &RingMember| {
        let (state, incarnation, hints_pending) = extra(&m.id);
        pb::Member {
            id: m.id.clone(),
            address: m.address.clone(),
            zone: m.zone.clone(),
            tokens: m.tokens,
            state,
            incarnation,
            hints_pending,
        }
    };
    pb::RingDescription {
        version: desc.version,
        replication: desc.replication,
        members: desc.members.iter().map(member).collect(),
        next_members: desc.next_members.iter().map(member).collect(),
        autoscaled_out: desc.autoscaled.out,
        autoscaled_in: desc.autoscaled.r#in,
    }
}

/// A ring description back from its wire form.
pub fn ring_from_proto(p: &pb::RingDescription) -> RingDescription {
    let member = |m: &pb::Member| RingMember {
        id: m.id.clone(),
        address: m.address.clone(),
        zone: m.zone.clone(),
        tokens: m.tokens,
    };
    RingDescription::new(
        p.version,
        p.replication,
        p.members.iter().map(member).collect(),
    )
    .with_next(p.next_members.iter().map(member).collect())
    .with_autoscaled(Autoscaled {
        out: p.autoscaled_out,
        r#in: p.autoscaled_in,
    })
}

/// A ring description without per-member extras.
pub fn ring_to_proto_plain(desc: &RingDescription) -> pb::RingDescription {
    ring_to_proto(desc, |_| (String::new(), 0, 0))
}
