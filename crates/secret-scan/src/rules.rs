//! The built-in high-signal secret patterns.

use crate::Rule;

/// The built-in rules: formats with a distinctive prefix or frame, so false positives are rare.
///
/// Every expression runs with Unicode off (`(?-u)`), matching bytes.
pub fn builtin_rules() -> Vec<Rule> {
    const RULES: &[(&str, &str, &str)] = &[
        (
            "aws-access-key-id",
            "AWS access key id",
            r"(?-u)\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
        ),
        (
            "github-token",
            "GitHub token (personal, OAuth, user-to-server, server-to-server, refresh)",
            r"(?-u)\bgh[pousr]_[A-Za-z0-9]{36,251}\b",
        ),
        (
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token",
            r"(?-u)\bgithub_pat_[A-Za-z0-9_]{50,255}\b",
        ),
        (
            "gitlab-token",
            "GitLab personal access token",
            r"(?-u)\bglpat-[A-Za-z0-9_\-.]{20,}",
        ),
        (
            "slack-token",
            "Slack token",
            r"(?-u)\bxox[baprs]-[A-Za-z0-9]{8,}-[A-Za-z0-9\-]{8,}",
        ),
        (
            "private-key",
            "PEM private key block",
            r"(?-u)-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----",
        ),
        (
            "anthropic-api-key",
            "Anthropic API key",
            r"(?-u)\bsk-ant-[A-Za-z0-9_\-]{20,}",
        ),
        (
            "openai-api-key",
            "OpenAI API key",
            r"(?-u)\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|[A-Za-z0-9]{48}\b)",
        ),
        (
            "google-api-key",
            "Google API key",
            r"(?-u)\bAIza[0-9A-Za-z_\-]{35}",
        ),
        (
            "stripe-secret-key",
            "Stripe live secret or restricted key",
            r"(?-u)\b[sr]k_live_[0-9A-Za-z]{24,}",
        ),
    ];
    RULES
        .iter()
        .map(|(id, desc, re)| Rule::new(*id, *desc, *re))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::Scanner;

    fn ids(input: &str) -> Vec<String> {
        let s = Scanner::with_builtin_rules(vec![]).unwrap();
        s.scan(input.as_bytes())
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    fn hits(input: &str, rule: &str) {
        assert_eq!(
            ids(input),
            vec![rule.to_string()],
            "expected {rule} in {input:?}"
        );
    }

    fn clean(input: &str) {
        assert!(
            ids(input).is_empty(),
            "false positive in {input:?}: {:?}",
            ids(input)
        );
    }

    const A36: &str = "abcdefghijABCDEFGHIJ0123456789abcdef";

    #[test]
    fn aws_access_key_id() {
        hits("key=AKIAIOSFODNN7EXAMPLE;", "aws-access-key-id");
        hits("\"ASIAY34FZKBOKMUTVV7A\"", "aws-access-key-id");
        clean("AKIAIOSFODNN7EXAMPLE1234");
        clean("akiaiosfodnn7example");
        clean("XAKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn github_tokens() {
        for p in ["ghp", "gho", "ghu", "ghs", "ghr"] {
            hits(&format!("token {p}_{A36}"), "github-token");
        }
        let fine = format!("github_pat_11ABCDEFG0{}_{}", "x".repeat(12), "Y".repeat(59));
        hits(&fine, "github-fine-grained-pat");
        clean("ghp_short");
        clean(&format!("ghx_{A36}"));
        clean("github_pat_");
    }

    #[test]
    fn gitlab_token() {
        hits("PRIVATE-TOKEN: glpat-xYz123abcDEF456ghiJK", "gitlab-token");
        clean("glpat-short");
    }

    #[test]
    fn slack_token() {
        hits(
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "slack-token",
        );
        hits("xoxp-123456789012-123456789012", "slack-token");
        clean("xoxo-123456789012-123456789012");
        clean("xoxb-");
    }

    #[test]
    fn private_key_blocks() {
        for kind in ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "] {
            hits(
                &format!("-----BEGIN {kind}PRIVATE KEY-----\nMIIE"),
                "private-key",
            );
        }
        hits("-----BEGIN PGP PRIVATE KEY BLOCK-----", "private-key");
        clean("-----BEGIN PUBLIC KEY-----");
        clean("-----BEGIN CERTIFICATE-----");
        clean("a private key is secret");
    }

    #[test]
    fn anthropic_key() {
        hits(
            "x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "anthropic-api-key",
        );
        clean("sk-ant-short");
        clean("task-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345");
    }

    #[test]
    fn openai_keys() {
        hits(
            "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            "openai-api-key",
        );
        hits(
            &format!("sk-{}T3BlbkFJ{}", "a".repeat(20), "B".repeat(20)),
            "openai-api-key",
        );
        hits(&format!("Bearer sk-{}", "Z9".repeat(24)), "openai-api-key");
        clean("sk-learn is a library");
        clean("risk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
        clean(&format!("sk-{}", "a".repeat(30)));
    }

    #[test]
    fn google_api_key() {
        hits(
            "key=AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "google-api-key",
        );
        clean("AIzaShort");
    }

    #[test]
    fn stripe_key() {
        hits("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-secret-key");
        hits("rk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-secret-key");
        clean("sk_test_4eC39HqLyjWDarjtT1zdp7dc");
    }

    #[test]
    fn ordinary_text_is_clean() {
        clean(
            "GET /repos/rust-lang/rust/pulls?state=open HTTP/1.1\r\nAccept: application/json\r\n",
        );
        clean(
            "{\"model\":\"claude\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}]}",
        );
        clean("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    }
}
