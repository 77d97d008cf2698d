//! "Did you mean …?" for misspelt keys and names.

/// The candidate closest to `given`, when it is close enough to be a likely typo.
pub(crate) fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    candidates
        .iter()
        .map(|candidate| {
            let distance = strsim::osa_distance(&given, &candidate.to_ascii_lowercase());
            (distance, *candidate)
        })
        .filter(|(distance, candidate)| *distance <= tolerance(candidate.len()))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// How many edits still look like a typo: more for longer words.
fn tolerance(length: usize) -> usize {
    match length {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    }
}

/// `` `a`, `b`, `c` `` for messages.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|item| format!("`{}`", item.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = ["env", "git", "egress_proxy", "egress", "Upstream"];
        assert_eq!(closest("egres_proxy", &keys), Some("egress_proxy"));
        assert_eq!(closest("upstrem", &keys), Some("Upstream"));
        assert_eq!(closest("gti", &keys), Some("git"));
        assert_eq!(closest("completely_different", &keys), None);
    }
}
