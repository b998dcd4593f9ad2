//! The pure planner of a contact pair: each mapped field's three-way merge against its base,
//! under the field's direction and policy (sync-model.md §4.1, §5), and the computed context
//! written where it differs. No I/O: views in, a [`PairPlan`] out.
//!
//! Rules, as for a link's fields:
//! - one side moved from the base: carry it, if the direction lets it travel; otherwise the
//!   base stays, so the change is still seen if the direction opens;
//! - both moved to one value: record the base, write nothing;
//! - both moved apart: the policy picks (`newest` by the contacts' update times, a tie to
//!   Trengo); under `newest` a value that cannot travel loses to the one that can;
//! - no base yet (a new pair): an empty side never wins over a filled one, so pairing fills
//!   gaps and never erases, and a one-way field takes its source's value; neither is a
//!   conflict (only two filled values of a both-ways field are, and the policy picks);
//! - a value a side holds that the field cannot read, or a value the other side cannot hold,
//!   is an error naming the field and the value: that field is not written, the base stays.

use chrono::{DateTime, Utc};

use super::convert::{self, ConvertError, Kind, Value};
use crate::sync::operation::Side;
use crate::sync::plan::fields::{Change, three_way, winner};
use crate::sync::policy::{Direction, Policy};

/// One mapped field of a pair, as both sides hold it now.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldView {
    /// The map entry's name (its base's key).
    pub name: String,
    /// Which way values flow.
    pub direction: Direction,
    /// Who wins a conflict.
    pub policy: Policy,
    /// How values convert (the GHL field's kind).
    pub kind: Kind,
    /// The Trengo dropdown's options, if any.
    pub trengo_items: Option<Vec<String>>,
    /// The last synced value.
    pub base: Option<Value>,
    /// Trengo's value, or why it cannot be read.
    pub trengo: Result<Value, ConvertError>,
    /// GHL's value, or why it cannot be read.
    pub ghl: Result<Value, ConvertError>,
}

/// A computed context field: what Trengo shows now and what it should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextView {
    /// What it is (`web link`, `next appointment`, ...), for the ledger.
    pub label: &'static str,
    /// The Trengo custom field id.
    pub field_id: i64,
    /// The value Trengo holds.
    pub current: String,
    /// The value computed from GHL.
    pub wanted: String,
}

/// A pair as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PairView {
    /// The pair's id.
    pub pair: i64,
    /// When the Trengo contact last changed, if known.
    pub trengo_at: Option<DateTime<Utc>>,
    /// When the GHL contact last changed, if known.
    pub ghl_at: Option<DateTime<Utc>>,
    /// The mapped fields.
    pub fields: Vec<FieldView>,
    /// The computed context.
    pub context: Vec<ContextView>,
}

/// One write of a pair's plan.
#[derive(Debug, Clone, PartialEq)]
pub enum PairWrite {
    /// A mapped field, to one side.
    Field {
        /// The map entry's name.
        field: String,
        /// The side written.
        to: Side,
        /// The value it holds now.
        old: Value,
        /// The value it gets.
        value: Value,
    },
    /// A computed context field (Trengo only).
    Context {
        /// What it is.
        label: &'static str,
        /// The Trengo custom field id.
        field_id: i64,
        /// What it shows now.
        old: String,
        /// What it gets.
        value: String,
    },
}

/// A conflict the policy settled.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The map entry's name.
    pub field: String,
    /// The side whose value won.
    pub winner: Side,
    /// The value that lost.
    pub losing: Value,
}

/// A field that could not be synced, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The map entry's name.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// What a pass does to one pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairPlan {
    /// The pair's id.
    pub pair: i64,
    /// The writes, in field order.
    pub writes: Vec<PairWrite>,
    /// The bases to record once the writes landed: field → value.
    pub bases: Vec<(String, Value)>,
    /// Conflicts settled by policy.
    pub settled: Vec<Settled>,
    /// Fields that could not be synced.
    pub errors: Vec<FieldError>,
}

impl PairPlan {
    /// Whether the plan writes nothing to either side.
    pub fn writes_nothing(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Plans one pair.
pub fn plan_pair(view: &PairView) -> PairPlan {
    let mut plan = PairPlan {
        pair: view.pair,
        ..PairPlan::default()
    };
    for field in &view.fields {
        plan_field(view, field, &mut plan);
    }
    for c in &view.context {
        if c.current.trim() != c.wanted.trim() {
            plan.writes.push(PairWrite::Context {
                label: c.label,
                field_id: c.field_id,
                old: c.current.clone(),
                value: c.wanted.clone(),
            });
        }
    }
    plan
}

fn plan_field(view: &PairView, f: &FieldView, plan: &mut PairPlan) {
    if f.direction == Direction::Off {
        return;
    }
    let unreadable = |side: &str, e: &ConvertError| FieldError {
        field: f.name.clone(),
        message: format!("the {side} value cannot be read: {e}; correct it in {side}"),
    };
    let (trengo, ghl) = match (&f.trengo, &f.ghl) {
        (Ok(t), Ok(g)) => (t, g),
        (Err(e), _) => return plan.errors.push(unreadable("Trengo", e)),
        (_, Err(e)) => return plan.errors.push(unreadable("GHL", e)),
    };
    // Whether a value can be written to a side: the direction allows it and the side can hold it.
    let fits = |to: Side, value: &Value| -> Result<(), ConvertError> {
        match to {
            Side::Ghl => convert::check(&f.kind, value),
            Side::Trengo => convert::to_trengo(value, f.trengo_items.as_deref()).map(|_| ()),
        }
    };
    let allowed = |to: Side| match to {
        Side::Ghl => f.direction.writes_ghl(),
        Side::Trengo => f.direction.writes_trengo(),
    };
    // Carries `from`'s value to the other side; false when the direction stops it.
    let carry = |plan: &mut PairPlan, from: Side| -> bool {
        let (to, value, old) = match from {
            Side::Trengo => (Side::Ghl, trengo, ghl),
            Side::Ghl => (Side::Trengo, ghl, trengo),
        };
        if !allowed(to) {
            return false;
        }
        if let Err(e) = fits(to, value) {
            plan.errors.push(FieldError {
                field: f.name.clone(),
                message: format!(
                    "`{}` from {} cannot be written to {}: {e}",
                    value.display(),
                    side_name(from),
                    side_name(to)
                ),
            });
            return true;
        }
        plan.writes.push(PairWrite::Field {
            field: f.name.clone(),
            to,
            old: old.clone(),
            value: value.clone(),
        });
        plan.bases.push((f.name.clone(), value.clone()));
        true
    };
    match three_way(f.base.as_ref(), trengo, ghl) {
        Change::None => {}
        Change::BothSame => plan.bases.push((f.name.clone(), trengo.clone())),
        Change::Trengo => {
            carry(plan, Side::Trengo);
        }
        Change::Ghl => {
            carry(plan, Side::Ghl);
        }
        Change::Conflict => {
            // A new pair (no base) holds no edits to weigh: it fills the empty side, and a
            // one-way field takes its source's value. Neither is a conflict.
            if f.base.is_none() {
                let from = if trengo.is_empty() {
                    Some(Side::Ghl)
                } else if ghl.is_empty() || !f.direction.writes_trengo() {
                    Some(Side::Trengo)
                } else if !f.direction.writes_ghl() {
                    Some(Side::Ghl)
                } else {
                    None
                };
                if let Some(from) = from {
                    carry(plan, from);
                    return;
                }
            }
            let first = winner(
                f.policy,
                view.trengo_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
                view.ghl_at,
            );
            let Some(first) = first else {
                return;
            };
            let mut won = first;
            if !carry(plan, first) {
                // The winner cannot travel: under `newest`, and for a new pair, the other side
                // wins; under a fixed policy the conflict stays unsynced.
                if f.policy != Policy::Newest && f.base.is_some() {
                    return;
                }
                won = other(first);
                if !carry(plan, won) {
                    return;
                }
            }
            plan.settled.push(Settled {
                field: f.name.clone(),
                winner: won,
                losing: match won {
                    Side::Trengo => ghl.clone(),
                    Side::Ghl => trengo.clone(),
                },
            });
        }
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Trengo => Side::Ghl,
        Side::Ghl => Side::Trengo,
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Trengo => "Trengo",
        Side::Ghl => "GHL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        if s.is_empty() {
            Value::Empty
        } else {
            Value::Text(s.into())
        }
    }

    fn field(base: Option<&str>, trengo: &str, ghl: &str) -> FieldView {
        FieldView {
            name: "n".into(),
            direction: Direction::Both,
            policy: Policy::Newest,
            kind: Kind::Text,
            trengo_items: None,
            base: base.map(text),
            trengo: Ok(text(trengo)),
            ghl: Ok(text(ghl)),
        }
    }

    fn view(fields: Vec<FieldView>) -> PairView {
        PairView {
            pair: 1,
            trengo_at: None,
            ghl_at: None,
            fields,
            context: Vec::new(),
        }
    }

    #[test]
    fn a_ghl_edit_crosses_to_trengo_and_records_the_base() {
        let plan = plan_pair(&view(vec![field(Some("a"), "a", "b")]));
        assert_eq!(
            plan.writes,
            vec![PairWrite::Field {
                field: "n".into(),
                to: Side::Trengo,
                old: text("a"),
                value: text("b")
            }]
        );
        assert_eq!(plan.bases, vec![("n".to_string(), text("b"))]);
    }

    #[test]
    fn a_new_pair_fills_the_empty_side_even_when_it_is_newer() {
        let mut v = view(vec![field(None, "", "C-1")]);
        v.trengo_at = Some(DateTime::<Utc>::MAX_UTC);
        let plan = plan_pair(&v);
        assert!(
            matches!(&plan.writes[0], PairWrite::Field { to: Side::Trengo, value, .. } if *value == text("C-1"))
        );
        assert!(plan.settled.is_empty(), "filling a gap is no conflict");
    }

    #[test]
    fn a_new_pairs_one_way_field_takes_its_sources_value_without_a_conflict() {
        let mut f = field(None, "old", "C-1");
        f.direction = Direction::GhlToTrengo;
        f.policy = Policy::Trengo;
        let plan = plan_pair(&view(vec![f]));
        assert!(matches!(
            &plan.writes[0],
            PairWrite::Field {
                to: Side::Trengo,
                ..
            }
        ));
        assert!(plan.settled.is_empty());
    }

    #[test]
    fn a_one_way_field_does_not_carry_the_other_way_and_keeps_its_base() {
        let mut f = field(Some("a"), "x", "a");
        f.direction = Direction::GhlToTrengo;
        let plan = plan_pair(&view(vec![f]));
        assert!(plan.writes.is_empty() && plan.bases.is_empty());
    }

    #[test]
    fn an_unreadable_value_is_an_error_and_nothing_is_written() {
        let mut f = field(Some("1"), "x", "1");
        f.kind = Kind::Number;
        f.trengo = convert::from_text(&Kind::Number, "twelve");
        let plan = plan_pair(&view(vec![f]));
        assert!(plan.writes.is_empty());
        assert!(
            plan.errors[0].message.contains("`twelve`"),
            "{:?}",
            plan.errors
        );
    }

    #[test]
    fn context_is_written_only_when_it_differs() {
        let mut v = view(vec![]);
        v.context = vec![
            ContextView {
                label: "web link",
                field_id: 5,
                current: "u".into(),
                wanted: "u".into(),
            },
            ContextView {
                label: "tags",
                field_id: 6,
                current: "".into(),
                wanted: "vip".into(),
            },
        ];
        let plan = plan_pair(&v);
        assert_eq!(plan.writes.len(), 1);
    }
}
