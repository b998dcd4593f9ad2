//! The source markers carried in copied notes.
//!
//! A note the engine copies carries, as its last line, the id of the note it came from:
//! `— via Trengo ticket #123 (message 456)` on GHL, `— via GHL (note abc)` on Trengo. The
//! marker is the idempotency key of the copy (sync-model.md §4.4: "source id in a note"): a
//! note that carries it is mapped to its source, never copied back (no echo) and never copied
//! twice (a crash between the create and the store commit).
//!
//! Parsing must survive what the other side does to a body: GHL's rich-text editor may wrap it
//! in HTML and escape the dash (ghl-api.md §5 \[recon\]), Trengo bodies are text or HTML
//! (trengo-api.md §4.5). It must not match user text by accident, so only the LAST non-empty
//! line counts, and it must be the whole marker, nothing before or after it. A user quoting a
//! copied note and writing below it therefore makes a new note, as they should.

/// A Trengo message named by a marker on a GHL note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrengoSource {
    /// The ticket the message belongs to.
    pub ticket_id: i64,
    pub message_id: i64,
}

const TRENGO_LEAD: &str = "via Trengo ticket #";
const GHL_LEAD: &str = "via GHL (note ";

/// The marker line naming Trengo message `message_id` of ticket `ticket_id`.
pub fn trengo_marker(ticket_id: i64, message_id: i64) -> String {
    format!("— {TRENGO_LEAD}{ticket_id} (message {message_id})")
}

/// The marker line naming GHL note `note_id`.
pub fn ghl_marker(note_id: &str) -> String {
    format!("— {GHL_LEAD}{note_id})")
}

/// `body` with the marker of a Trengo message appended, as written to GHL.
pub fn with_trengo_marker(body: &str, ticket_id: i64, message_id: i64) -> String {
    format!(
        "{}\n\n{}",
        body.trim_end(),
        trengo_marker(ticket_id, message_id)
    )
}

/// `body` with the marker of a GHL note appended, as written to Trengo.
pub fn with_ghl_marker(body: &str, note_id: &str) -> String {
    format!("{}\n\n{}", body.trim_end(), ghl_marker(note_id))
}

/// The Trengo message a GHL note body was copied from, if its last line is our marker.
pub fn trengo_source(body: &str) -> Option<TrengoSource> {
    let rest = strip_dash(&last_line(body)?)?
        .strip_prefix(TRENGO_LEAD)?
        .to_owned();
    let (ticket, rest) = rest.split_once(" (message ")?;
    let message = rest.strip_suffix(')')?;
    Some(TrengoSource {
        ticket_id: parse_id(ticket)?,
        message_id: parse_id(message)?,
    })
}

/// The GHL note a Trengo message body was copied from, if its last line is our marker.
pub fn ghl_source(body: &str) -> Option<String> {
    let line = last_line(body)?;
    let id = strip_dash(&line)?
        .strip_prefix(GHL_LEAD)?
        .strip_suffix(')')?;
    // GHL ids are alphanumeric (ghl-api.md §5: "DqaZSho8TS7PF8QMBv8J"); anything else is user text.
    let plausible = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plausible.then(|| id.to_owned())
}

/// The ticket ids a body names as `#<digits>`, in order of appearance (HTML decoded first, so
/// `&#35;12` counts and an undecoded entity such as `&#8217;` does not).
pub fn hash_ticket_ids(body: &str) -> Vec<i64> {
    let text = html_to_text(body);
    let chars: Vec<char> = text.chars().collect();
    let mut ids = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        if c != '#' {
            continue;
        }
        // `a#1` and `&#1` are not ticket references.
        if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '&') {
            continue;
        }
        let digits: String = chars[i + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .collect();
        let next = chars.get(i + 1 + digits.len());
        if next.is_some_and(|n| n.is_alphanumeric() || *n == ';') {
            continue;
        }
        if let Some(id) = parse_id(&digits) {
            ids.push(id);
        }
    }
    ids
}

fn parse_id(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The dash that opens a marker, as written or as an editor may have rewritten it.
fn strip_dash(line: &str) -> Option<&str> {
    ["— ", "– ", "-- ", "- "]
        .iter()
        .find_map(|dash| line.strip_prefix(dash))
}

/// The last non-empty line of `body` as plain text: HTML line breaks become newlines, other
/// tags vanish, common entities are decoded and runs of whitespace collapse to one space.
fn last_line(body: &str) -> Option<String> {
    let text = html_to_text(body);
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .rfind(|l| !l.is_empty())
}

fn html_to_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('>') else {
            // A lone `<` is text, not a tag.
            out.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..close].trim().to_ascii_lowercase();
        let name = tag.trim_start_matches('/');
        let name = name
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if matches!(
            name,
            "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "blockquote"
        ) {
            out.push('\n');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    decode_entities(&out)
}

fn decode_entities(text: &str) -> String {
    const ENTITIES: [(&str, &str); 14] = [
        ("&mdash;", "—"),
        ("&#8212;", "—"),
        ("&#x2014;", "—"),
        ("&ndash;", "–"),
        ("&#8211;", "–"),
        ("&nbsp;", " "),
        ("&#160;", " "),
        ("&#35;", "#"),
        ("&#x23;", "#"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        // Last, so `&amp;mdash;` stays the literal text `&mdash;`.
        ("&amp;", "&"),
    ];
    let mut out = text.replace('\u{a0}', " ");
    for (entity, plain) in ENTITIES {
        out = out.replace(entity, plain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_markers_round_trip() {
        let body = with_trengo_marker("Customer called back", 123, 456);
        assert_eq!(
            trengo_source(&body),
            Some(TrengoSource {
                ticket_id: 123,
                message_id: 456
            })
        );
        let body = with_ghl_marker("Quote sent", "DqaZSho8TS7PF8QMBv8J");
        assert_eq!(ghl_source(&body).as_deref(), Some("DqaZSho8TS7PF8QMBv8J"));
    }

    #[test]
    fn markers_survive_html_wrapping() {
        let ghl = "<p>Customer called back</p><p>&mdash;&nbsp;via Trengo ticket &#35;123 (message 456)</p>";
        assert_eq!(
            trengo_source(ghl),
            Some(TrengoSource {
                ticket_id: 123,
                message_id: 456
            })
        );
        let trengo = "<div>Quote sent<br><br>— via GHL (note abc123)</div>\n";
        assert_eq!(ghl_source(trengo).as_deref(), Some("abc123"));
    }

    #[test]
    fn hash_ticket_ids_skip_entities_and_words() {
        assert_eq!(hash_ticket_ids("about #12, not #13b or x#14"), vec![12]);
        assert_eq!(hash_ticket_ids("<p>re &#35;77 &#8217;</p>"), vec![77]);
        assert_eq!(hash_ticket_ids("#5 and #6."), vec![5, 6]);
    }

    #[test]
    fn user_text_mentioning_a_marker_is_not_a_marker() {
        // Quoted, then written below: a new note.
        let quoted = format!("{}\nThanks, noted.", trengo_marker(1, 2));
        assert_eq!(trengo_source(&quoted), None);
        // Mid-sentence mention.
        assert_eq!(
            trengo_source("see — via Trengo ticket #1 (message 2) above"),
            None
        );
        assert_eq!(ghl_source("it came via GHL (note abc) I think"), None);
        // Not numbers.
        assert_eq!(trengo_source("— via Trengo ticket #one (message 2)"), None);
        assert_eq!(ghl_source("— via GHL (note a b)"), None);
        assert_eq!(ghl_source("— via GHL (note )"), None);
    }
}
