//! When only the scale suite ran and no earlier `results.json` holds the read and write
//! figures (a fresh clone, another bench directory), the report already in `docs/` keeps
//! them: the scale section is put into it (between markers, replacing an earlier one) and its
//! header line updated, rather than the document being rewritten without them.

/// Marks the start of the scale section in the report.
pub(super) const BEGIN: &str = "<!-- scale suite: begin -->";
/// Marks its end.
pub(super) const END: &str = "<!-- scale suite: end -->";
const HEADER_KEY: &str = "- **Scale suite:** ";

/// `existing` with the scale section `section` (markers included) and the header line `line`
/// in place; None when `existing` is not a report of this benchmark.
pub(super) fn splice(existing: &str, section: &str, line: &str) -> Option<String> {
    if !existing.starts_with("# Benchmarks") {
        return None;
    }
    let mut doc = match (existing.find(BEGIN), existing.find(END)) {
        (Some(b), Some(e)) if b < e => {
            // The section ends with its own line break after the end marker.
            let after = e + END.len();
            let after = after + usize::from(existing[after..].starts_with('\n'));
            format!("{}{section}{}", &existing[..b], &existing[after..])
        }
        _ => {
            // First time: before the method chapter, or at the end.
            let at = existing
                .find("\n## Method")
                .map_or(existing.len(), |i| i + 1);
            format!("{}{section}\n{}", &existing[..at], &existing[at..])
        }
    };
    let header_line = format!("{HEADER_KEY}{line}");
    if let Some(i) = doc.find(HEADER_KEY) {
        let end = doc[i..].find('\n').map_or(doc.len(), |n| i + n);
        doc.replace_range(i..end, &header_line);
    } else if let Some(i) = doc.find("- **Write suite:** ") {
        let end = doc[i..].find('\n').map_or(doc.len(), |n| i + n + 1);
        doc.insert_str(end, &format!("{header_line}\n"));
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "# Benchmarks: reading and writing\n\n- **Write suite:** w\n- **Took:** t\n\n\
                       ## Ratios\n\nread figures\n\n## Method\n\nhow\n";

    fn section(text: &str) -> String {
        format!("{BEGIN}\n## Scale\n\n{text}\n{END}\n")
    }

    #[test]
    fn inserted_before_the_method_then_replaced_in_place() {
        let once = splice(DOC, &section("first"), "run 1").unwrap();
        assert!(once.contains("read figures"));
        assert!(once.contains("- **Write suite:** w\n- **Scale suite:** run 1\n- **Took:**"));
        let scale_at = once.find("## Scale").unwrap();
        assert!(once.find("read figures").unwrap() < scale_at);
        assert!(scale_at < once.find("## Method").unwrap());

        let twice = splice(&once, &section("second"), "run 2").unwrap();
        assert!(!twice.contains("first") && twice.contains("second"));
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert!(twice.contains("- **Scale suite:** run 2\n"));
        assert!(!twice.contains("run 1"));
        assert_eq!(
            splice(&twice, &section("second"), "run 2").unwrap(),
            twice,
            "splicing is idempotent"
        );
    }

    #[test]
    fn not_a_report_is_left_alone() {
        assert_eq!(splice("hello", &section("x"), "l"), None);
    }
}
