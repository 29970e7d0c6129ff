//! `ghl-etl sandbox`: runs the sandbox in the foreground and prints what a user needs to
//! point the CLI (or curl) at it, and, when it sends webhooks, what a listener needs to verify
//! them (the two public keys, as `export` lines). Its flags are `cli::sandbox`'s.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{
    Hostile, Sandbox, SandboxConfig, WebhookConfig, APP_ID, DEFAULT_AGENCY_TOKEN, DEFAULT_TOKEN,
    OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
};

/// The server `ghl-etl sandbox` runs.
#[derive(Debug, Clone)]
pub struct ForegroundPlan {
    pub config: SandboxConfig,
    pub addr: SocketAddr,
    /// A hostile answer armed at start, and for how many answers it applies to.
    pub hostile: Option<(Hostile, u64)>,
}

/// The start-up text: URL, tokens, OAuth credentials, locations, ready-to-paste exports.
fn banner(sb: &Sandbox, plan: &ForegroundPlan, refresh: &str) -> String {
    let cfg = &plan.config;
    let url = if plan.addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", sb.addr().port())
    } else {
        sb.url()
    };
    let ids = sb.location_ids();
    let mut b = String::new();
    let _ = writeln!(b, "GHL sandbox listening on {url}");
    let rate = cfg.rate_limit.map_or("off".to_string(), |r| r.to_string());
    let _ = writeln!(
        b,
        "  {} contacts x {} location(s), seed {}, rate limit {rate}, daily limit {}, fault rate {}, latency {} ms",
        cfg.contacts,
        cfg.locations,
        cfg.seed,
        cfg.daily_limit,
        cfg.fault_rate,
        cfg.latency.as_millis()
    );
    if let Some((mode, answers)) = &plan.hostile {
        let how_many = if *answers == u64::MAX {
            "every answer".to_string()
        } else {
            format!("the next {answers} answer(s)")
        };
        let _ = writeln!(b, "  hostile: {} for {how_many} it applies to", mode.name());
    }
    let _ = writeln!(b, "\nLocations:");
    for (i, id) in ids.iter().enumerate() {
        match &cfg.fixture {
            Some(f) if i == 0 => {
                let (c, t, n) = (f.contacts.len(), f.tasks.len(), f.notes.len());
                let _ = writeln!(
                    b,
                    "  {id}  (the fixture: {c} contacts, {t} tasks, {n} notes)"
                );
            }
            Some(_) => {
                let _ = writeln!(b, "  {id}  (empty)");
            }
            None => {
                let _ = writeln!(b, "  {id}");
            }
        }
    }
    let _ = writeln!(b, "\nTokens:");
    let _ = writeln!(b, "  {DEFAULT_TOKEN}  (all scopes, all locations)");
    let _ = writeln!(
        b,
        "  {DEFAULT_AGENCY_TOKEN}  (agency token: company {}, app {APP_ID})",
        sb.company_id()
    );
    for t in &cfg.tokens {
        let locs = t
            .locations
            .as_ref()
            .map_or("all locations".to_string(), |l| l.join(", "));
        let _ = writeln!(b, "  {}  scopes: {}  ({locs})", t.token, t.scopes.join(" "));
    }
    let _ = writeln!(
        b,
        "\nOAuth (POST {url}/oauth/token, grant_type=refresh_token):"
    );
    let _ = writeln!(b, "  client_id:     {OAUTH_CLIENT_ID}");
    let _ = writeln!(b, "  client_secret: {OAUTH_CLIENT_SECRET}");
    let _ = writeln!(b, "  refresh_token: {refresh}");
    let _ = writeln!(b, "\nPaste into your shell:");
    let _ = writeln!(b, "  export GHL_BASE_URL={url}");
    let _ = writeln!(b, "  export GHL_TOKEN={DEFAULT_TOKEN}");
    if let Some(first) = ids.first() {
        let _ = writeln!(b, "  ghl-etl export --location {first} --out ./export");
    }
    if let Some(w) = &cfg.webhooks {
        webhook_banner(&mut b, sb, w, &url);
    }
    let _ = writeln!(b, "\nCounters: curl {url}/_sandbox/stats");
    let _ = writeln!(
        b,
        "Workflows, campaigns, users of a location: curl {url}/_sandbox/locations/<id>"
    );
    let _ = writeln!(b, "Press Ctrl-C to stop.");
    b
}

/// Where webhooks go, how, and the keys to verify them, ready to paste.
fn webhook_banner(b: &mut String, sb: &Sandbox, w: &WebhookConfig, url: &str) {
    let keys = sb.webhook_public_keys();
    let _ = writeln!(b, "\nWebhooks: POST {}", w.url);
    let _ = writeln!(
        b,
        "  signatures {}, a 429 retried every {} s up to {} times, duplicates {}, reorder {}, TaskCreate without contactId {}",
        w.schemes,
        w.retry_delay.as_secs_f64(),
        w.max_retries,
        w.duplicate_rate,
        w.reorder_rate,
        w.drop_contact_id_rate
    );
    let _ = writeln!(
        b,
        "  change a contact without a token: curl -X POST {url}/_sandbox/contacts/<id> -H 'Content-Type: application/json' -d '{{\"firstName\":\"Ann\",\"tags\":[\"vip\"]}}'"
    );
    let _ = writeln!(b, "  counters: curl {url}/_sandbox/webhooks");
    let _ = writeln!(
        b,
        "\nEd25519 public key (x-ghl-signature; new at every start):"
    );
    let _ = write!(b, "{}", keys.ed25519_pem);
    let _ = writeln!(
        b,
        "RSA public key (x-wh-signature; a test key that signs only sandbox webhooks):"
    );
    let _ = write!(b, "{}", keys.rsa_pem);
    let _ = writeln!(b, "\nPaste into the listener's shell:");
    let _ = writeln!(
        b,
        "export WEBHOOK_SIGNATURE_PUBLIC_KEY=\"{}\"",
        keys.ed25519_pem.trim_end()
    );
    let _ = writeln!(
        b,
        "export WEBHOOK_PUBLIC_KEY=\"{}\"",
        keys.rsa_pem.trim_end()
    );
}

/// Runs the sandbox until Ctrl-C.
pub async fn run_foreground(plan: ForegroundPlan) -> std::io::Result<()> {
    let addr = plan.addr;
    let sb = Sandbox::start_on(plan.config.clone(), addr)
        .await
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start the sandbox on {addr}: {e}"))
        })?;
    let scopes: Vec<&str> = super::auth::ALL_SCOPES.to_vec();
    let refresh = sb.issue_refresh_token(&scopes);
    if let Some((mode, answers)) = &plan.hostile {
        sb.set_hostile(Some(mode.clone()), *answers);
    }
    print!("{}", banner(&sb, &plan, &refresh));
    tokio::signal::ctrl_c().await?;
    tracing::info!("Sandbox stopping.");
    if plan.config.webhooks.is_some() {
        let w = sb.webhook_stats();
        tracing::info!(
            emitted = w.emitted,
            delivered = w.delivered,
            retried = w.retried,
            lost = w.lost,
            duplicates_sent = w.duplicates_sent,
            "Webhooks stop being delivered."
        );
    }
    sb.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn banner_names_everything_needed() {
        let plan = ForegroundPlan {
            config: SandboxConfig {
                contacts: 5,
                tokens: vec!["r=contacts.readonly".parse().unwrap()],
                ..SandboxConfig::default()
            },
            addr: "127.0.0.1:0".parse().unwrap(),
            hostile: Some((Hostile::RepeatPage, 2)),
        };
        let sb = Sandbox::start(plan.config.clone()).await.unwrap();
        let text = banner(&sb, &plan, "RT");
        for needle in [
            sb.url().as_str(),
            DEFAULT_TOKEN,
            "r  scopes: contacts.readonly",
            OAUTH_CLIENT_ID,
            OAUTH_CLIENT_SECRET,
            "refresh_token: RT",
            "export GHL_BASE_URL=",
            "export GHL_TOKEN=sandbox-token",
            "ghl-etl export --location ",
            sb.location_ids()[0].as_str(),
            "hostile: page_repeats for the next 2 answer(s)",
        ] {
            assert!(text.contains(needle), "banner lacks {needle:?}:\n{text}");
        }
        assert!(!text.contains("WEBHOOK"), "{text}");
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn banner_prints_the_webhook_keys_to_paste() {
        let plan = ForegroundPlan {
            config: SandboxConfig {
                contacts: 1,
                webhooks: Some(WebhookConfig::new("http://127.0.0.1:9/hooks")),
                ..SandboxConfig::default()
            },
            addr: "127.0.0.1:0".parse().unwrap(),
            hostile: None,
        };
        let sb = Sandbox::start(plan.config.clone()).await.unwrap();
        let text = banner(&sb, &plan, "RT");
        let keys = sb.webhook_public_keys();
        let ed = format!(
            "export WEBHOOK_SIGNATURE_PUBLIC_KEY=\"{}\"\n",
            keys.ed25519_pem.trim_end()
        );
        let rsa = format!(
            "export WEBHOOK_PUBLIC_KEY=\"{}\"\n",
            keys.rsa_pem.trim_end()
        );
        for needle in [
            "Webhooks: POST http://127.0.0.1:9/hooks",
            "signatures both, a 429 retried every 600 s up to 6 times",
            "/_sandbox/contacts/<id>",
            keys.ed25519_pem.as_str(),
            keys.rsa_pem.as_str(),
            ed.as_str(),
            rsa.as_str(),
        ] {
            assert!(text.contains(needle), "banner lacks {needle:?}:\n{text}");
        }
        assert!(ed.contains("-----BEGIN PUBLIC KEY-----\n"));
        sb.shutdown().await;
    }
}
