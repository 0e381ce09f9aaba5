//! `kmsctl rotate-master-key [--batch-size N]` and `kmsctl
//! master-key-status`: the admin API's `HsmKmsAdmin.RotateMasterKey` /
//! `GetMasterKeyStatus`. A rotation is a series of bounded steps on the
//! server; this command calls them until the server reports completion,
//! printing progress on stderr and the totals at the end. Interrupted (or
//! failed) anywhere, running it again finishes the same rotation.

use super::Global;
use super::output::{print_fields, print_json, text};
use super::principal::call;
use serde_json::{Value, json};

/// Arguments of `rotate-master-key`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// Tokens rewrapped per database transaction (1..=1000).
    #[arg(long, default_value_t = 100)]
    pub batch_size: u32,
}

fn count(v: &Value, field: &str) -> u64 {
    v.get(field).and_then(Value::as_u64).unwrap_or(0)
}

/// Runs a whole master-key rotation.
pub async fn rotate(global: &Global, args: RotateArgs) -> anyhow::Result<()> {
    let client = global.client()?;
    let (mut versions, mut system, mut steps) = (0u64, 0u64, 0u64);
    loop {
        let reply = call(
            &client,
            "RotateMasterKey",
            &json!({ "BatchSize": args.batch_size }),
        )
        .await?;
        steps += 1;
        versions += count(&reply, "RewrappedKeyVersions");
        system += count(&reply, "RewrappedSystemKeys");
        let generation = count(&reply, "Generation");
        let done = reply.get("Completed").and_then(Value::as_bool) == Some(true);
        if !done {
            eprintln!(
                "generation {generation}: {} of {} tokens still to rewrap",
                count(&reply, "RemainingTokens"),
                count(&reply, "Tokens")
            );
            continue;
        }
        let summary = json!({
            "Generation": generation,
            "RewrappedKeyVersions": versions,
            "RewrappedSystemKeys": system,
            "Tokens": count(&reply, "Tokens"),
            "Steps": steps,
            "Completed": true,
        });
        if global.json {
            print_json(&summary);
        } else {
            println!(
                "master key rotated to generation {generation}: rewrapped {versions} key \
                 version(s) and {system} system key(s) in {steps} step(s); {} token(s) stored, \
                 all under the new key",
                count(&reply, "Tokens")
            );
        }
        return Ok(());
    }
}

/// Prints the master-key generations and token counts.
pub async fn status(global: &Global) -> anyhow::Result<()> {
    let client = global.client()?;
    let reply = call(&client, "GetMasterKeyStatus", &json!({})).await?;
    if global.json {
        print_json(&reply);
    } else {
        print_fields(&[
            ("Generation", text(reply.get("Generation"))),
            ("PreviousGeneration", text(reply.get("PreviousGeneration"))),
            ("RotationInProgress", text(reply.get("RotationInProgress"))),
            ("StaleTokens", text(reply.get("StaleTokens"))),
            ("Tokens", text(reply.get("Tokens"))),
        ]);
    }
    Ok(())
}
