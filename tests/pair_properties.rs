//! Property tests of the contact-pair planner (sync-model.md §5, §6) over an in-memory model of
//! both contacts and the pair's bases: stability, convergence and no lost update, for every
//! direction and policy, over text, number and option fields, with values a side cannot hold.
//!
//! `Model::apply` plays both APIs and the executor: a write puts the value on its side as that
//! side holds it (Trengo as text, GHL typed), and the plan's bases are recorded.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use trengo_sync::sync::operation::Side;
use trengo_sync::sync::pairs::convert::{self, Kind, Value};
use trengo_sync::sync::pairs::plan::{FieldView, PairView, PairWrite, plan_pair};
use trengo_sync::sync::policy::{Direction, Policy};

fn tiers() -> Kind {
    Kind::Options {
        multiple: false,
        allowed: vec!["Basic".into(), "Pro".into(), "Enterprise".into()],
    }
}

/// Raw texts a person may type on either side; some are not valid for every kind.
const TEXTS: [&str; 8] = [
    "",
    "Pro",
    "basic",
    "Gold",
    "12",
    "12.50",
    "C-1",
    "Enterprise",
];

fn kind_of(pick: u8) -> Kind {
    match pick % 3 {
        0 => Kind::Text,
        1 => Kind::Number,
        _ => tiers(),
    }
}

fn direction_of(pick: u8) -> Direction {
    [
        Direction::Both,
        Direction::TrengoToGhl,
        Direction::GhlToTrengo,
    ][pick as usize % 3]
}

fn policy_of(pick: u8) -> Policy {
    [Policy::Newest, Policy::Trengo, Policy::Ghl][pick as usize % 3]
}

/// One mapped field on both sides, as the APIs hold it, and its base.
#[derive(Debug, Clone)]
struct Model {
    kind: Kind,
    direction: Direction,
    policy: Policy,
    trengo: String,
    ghl: serde_json::Value,
    base: Option<Value>,
    trengo_at: DateTime<Utc>,
    ghl_at: DateTime<Utc>,
}

impl Model {
    fn view(&self) -> PairView {
        PairView {
            pair: 1,
            trengo_at: Some(self.trengo_at),
            ghl_at: Some(self.ghl_at),
            fields: vec![FieldView {
                name: "f".into(),
                direction: self.direction,
                policy: self.policy,
                kind: self.kind.clone(),
                trengo_items: None,
                base: self.base.clone(),
                trengo: convert::from_text(&self.kind, &self.trengo),
                ghl: convert::from_ghl(&self.kind, &self.ghl),
            }],
            context: Vec::new(),
        }
    }

    /// Plans and applies; returns how many writes were made.
    fn pass(&mut self) -> usize {
        let plan = plan_pair(&self.view());
        for w in &plan.writes {
            if let PairWrite::Field { to, value, .. } = w {
                match to {
                    Side::Trengo => self.trengo = convert::to_trengo(value, None).unwrap(),
                    Side::Ghl => self.ghl = convert::to_ghl(&self.kind, value).unwrap(),
                }
            }
        }
        for (_, value) in &plan.bases {
            self.base = Some(value.clone());
        }
        plan.writes.len()
    }

    fn values(
        &self,
    ) -> (
        Result<Value, convert::ConvertError>,
        Result<Value, convert::ConvertError>,
    ) {
        (
            convert::from_text(&self.kind, &self.trengo),
            convert::from_ghl(&self.kind, &self.ghl),
        )
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + Duration::minutes(minutes)
}

fn model() -> impl Strategy<Value = Model> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0..TEXTS.len(),
        0..TEXTS.len(),
        proptest::option::of(0..TEXTS.len()),
        -5i64..5,
    )
        .prop_map(|(k, d, p, t, g, b, skew)| {
            let kind = kind_of(k);
            // GHL holds what GHL can hold: a typed value, or nothing.
            let ghl = convert::from_text(&kind, TEXTS[g])
                .ok()
                .and_then(|v| convert::to_ghl(&kind, &v).ok())
                .unwrap_or(serde_json::Value::Null);
            let base = b.and_then(|b| convert::from_text(&kind, TEXTS[b]).ok());
            Model {
                kind,
                direction: direction_of(d),
                policy: policy_of(p),
                trengo: TEXTS[t].to_string(),
                ghl,
                base,
                trengo_at: at(0),
                ghl_at: at(skew),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Stability: a second pass with no new edits writes nothing.
    #[test]
    fn a_second_pass_without_edits_writes_nothing(mut m in model()) {
        m.pass();
        prop_assert_eq!(m.pass(), 0, "{:?}", m);
    }

    /// Convergence: after a pass, a field both ways with readable values agrees on both sides.
    #[test]
    fn both_ways_fields_agree_after_a_pass(mut m in model()) {
        m.direction = Direction::Both;
        let readable = matches!(m.values(), (Ok(_), Ok(_)));
        m.pass();
        if readable {
            let (t, g) = m.values();
            prop_assert_eq!(t.unwrap(), g.unwrap(), "{:?}", m);
        }
    }

    /// No lost update: an edit on one side only, where the direction lets it travel and the
    /// other side can hold it, reaches the other side; the edited side is never written.
    #[test]
    fn one_sided_edits_are_carried_and_never_overwritten(
        mut m in model(), t in 0..TEXTS.len(), trengo_edits in any::<bool>()
    ) {
        // Settle first, then one person edits one side.
        m.pass();
        m.pass();
        let before = m.clone();
        let edited = if trengo_edits {
            m.trengo = TEXTS[t].to_string();
            convert::from_text(&m.kind, &m.trengo)
        } else {
            match convert::from_text(&m.kind, TEXTS[t]).and_then(|v| convert::to_ghl(&m.kind, &v)) {
                Ok(raw) => { m.ghl = raw; convert::from_ghl(&m.kind, &m.ghl) }
                Err(e) => Err(e),
            }
        };
        let Ok(edited) = edited else { return Ok(()) };
        // From a synced field (an unsynced one may hold a change still waiting, ABA aside).
        let was_synced = matches!(before.values(), (Ok(a), Ok(b)) if a == b);
        if !was_synced {
            return Ok(());
        }
        m.pass();
        let (t_now, g_now) = m.values();
        // The edited side still holds the edit.
        if trengo_edits {
            prop_assert_eq!(t_now.clone().unwrap(), edited.clone());
        } else {
            prop_assert_eq!(g_now.clone().unwrap(), edited.clone());
        }
        let travels = if trengo_edits { m.direction.writes_ghl() } else { m.direction.writes_trengo() };
        let fits = convert::check(&m.kind, &edited).is_ok();
        if travels && fits {
            let other = if trengo_edits { g_now.unwrap() } else { t_now.unwrap() };
            prop_assert_eq!(other, edited, "{:?}", before);
        }
    }
}

#[test]
fn a_value_ghl_cannot_hold_never_reaches_ghl_and_leaves_the_base() {
    let mut m = Model {
        kind: tiers(),
        direction: Direction::Both,
        policy: Policy::Newest,
        trengo: "Pro".into(),
        ghl: serde_json::json!("Pro"),
        base: Some(Value::Options(BTreeSet::from(["Pro".to_string()]))),
        trengo_at: at(0),
        ghl_at: at(0),
    };
    m.pass();
    m.trengo = "Gold".into();
    let plan = plan_pair(&m.view());
    assert!(plan.writes.is_empty());
    assert!(plan.bases.is_empty());
    assert!(
        plan.errors[0].message.contains("`Gold`"),
        "{:?}",
        plan.errors
    );
}
