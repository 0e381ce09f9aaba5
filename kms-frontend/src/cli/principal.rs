//! `kmsctl principal create NAME [--admin] | list | delete NAME |
//! grant-cmk-access NAME KEY_ID`: the admin API (`HsmKmsAdmin.*` targets)
//! through the shared signed client. `create` prints the new credentials as
//! `export AWS_ACCESS_KEY_ID=...` / `export AWS_SECRET_ACCESS_KEY=...`
//! lines to paste (the secret is shown this once; the server keeps it only
//! encrypted).

use super::Global;
use super::client::{KmsClient, decode_reply};
use super::output::{print_json, print_table, text};
use bytes::Bytes;
use clap::Subcommand;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The `X-Amz-Target` prefix of the admin API.
const ADMIN_PREFIX: &str = "HsmKmsAdmin.";

/// `kmsctl principal ...`
#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Create a principal (user NAME in the account) and print its credentials.
    Create {
        name: String,
        /// Make it an account administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the principals (from the config file and made at run time).
    List,
    /// Delete a principal made at run time.
    Delete { name: String },
    /// Share a key with principal NAME (a grant for use, not management).
    GrantCmkAccess { name: String, key_id: String },
}

/// Calls admin operation `op` (also used by `master_key`).
pub(super) async fn call(client: &KmsClient, op: &str, body: &Value) -> anyhow::Result<Value> {
    let target = format!("{ADMIN_PREFIX}{op}");
    let body = serde_json::to_vec(body)?;
    let reply = client
        .send(
            http::Method::POST,
            "/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", &target),
            ],
            Bytes::from(body),
        )
        .await?;
    Ok(decode_reply(reply)?)
}

/// Runs one `principal` subcommand.
pub async fn run(global: &Global, cmd: PrincipalCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    match cmd {
        PrincipalCommand::Create { name, admin } => {
            let reply = call(
                &client,
                "CreatePrincipal",
                &json!({"Name": name, "Admin": admin}),
            )
            .await?;
            if global.json {
                print_json(&reply);
            } else {
                println!(
                    "# {} ({})",
                    text(reply["Principal"].get("Arn")),
                    if admin { "administrator" } else { "principal" }
                );
                println!(
                    "export AWS_ACCESS_KEY_ID={}",
                    text(reply["Principal"].get("AccessKeyId"))
                );
                let secret = Zeroizing::new(text(reply.get("SecretAccessKey")));
                println!("export AWS_SECRET_ACCESS_KEY={}", secret.as_str());
            }
        }
        PrincipalCommand::List => {
            let reply = call(&client, "ListPrincipals", &json!({})).await?;
            if global.json {
                print_json(&reply);
            } else {
                let rows: Vec<Vec<String>> = reply["Principals"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|p| {
                        vec![
                            text(p.get("Name")),
                            text(p.get("Arn")),
                            text(p.get("AccessKeyId")),
                            if p["Admin"].as_bool() == Some(true) {
                                "yes".into()
                            } else {
                                "no".into()
                            },
                            text(p.get("Source")),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "ARN", "ACCESS KEY ID", "ADMIN", "SOURCE"], &rows);
            }
        }
        PrincipalCommand::Delete { name } => {
            let reply = call(&client, "DeletePrincipal", &json!({"Name": name})).await?;
            if global.json {
                print_json(&reply);
            } else {
                println!("deleted {name}");
            }
        }
        PrincipalCommand::GrantCmkAccess { name, key_id } => {
            let reply = call(
                &client,
                "GrantCmkAccess",
                &json!({"KeyId": key_id, "Principal": name}),
            )
            .await?;
            if global.json {
                print_json(&reply);
            } else {
                println!(
                    "granted {name} use of {key_id}: grant {}",
                    text(reply.get("GrantId"))
                );
            }
        }
    }
    Ok(())
}
