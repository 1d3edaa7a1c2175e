//! The `roost` binary: `serve` (the default), `migrate`, `seed`, `user create`,
//! `audit`.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use roost::config::Settings;
use roost::db::{Db, migrations};
use roost::domain::{Email, Password, PersonName, Role};
use roost::services::accounts::{self, NewAccount};
use roost::startup::Application;

#[derive(Parser)]
#[command(name = "roost", version, about = "Real-time reservation server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Applies pending migrations first.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Fill an empty database with demo data, the same for the same --seed.
    Seed {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 1_000)]
        properties: usize,
        #[arg(long, default_value_t = 10_000)]
        bookings: usize,
        /// Defaults to one host per 20 listings (at least 1).
        #[arg(long)]
        hosts: Option<usize>,
        #[arg(long, default_value_t = 2_000)]
        guests: usize,
        /// The day bookings are laid out around (YYYY-MM-DD); defaults to today (UTC).
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
    },
    /// Print the audit trail as JSON lines, newest first (what `GET
    /// /api/v1/audit` shows an admin), for an operator without a token.
    Audit(AuditArgs),
    /// Manage accounts from the command line.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(clap::Args)]
struct AuditArgs {
    /// From this time on: RFC 3339 (2026-11-22T10:00:00Z) or a day (2026-11-22).
    #[arg(long)]
    since: String,
    /// Only this action (user.login_failed, booking.held, access.denied…).
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    actor_id: Option<i64>,
    #[arg(long)]
    object_type: Option<String>,
    #[arg(long)]
    object_id: Option<i64>,
    /// At most this many rows (all of them by default).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account of any role, e.g. the first admin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["guest", "host", "admin"])]
        role: String,
        /// Display name; defaults to the part of the email before the @.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input. Without
        /// it, ROOST_USER_PASSWORD is used, or a random one is generated and printed.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roost: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    roost::telemetry::init(&settings);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Seed {
            seed,
            properties,
            bookings,
            hosts,
            guests,
            today,
        } => {
            let opts = roost::seed::SeedOptions {
                seed,
                properties,
                bookings,
                hosts: hosts.unwrap_or((properties / 20).max(1)),
                guests,
                today: today.unwrap_or_else(|| chrono::Utc::now().date_naive()),
            };
            seed_database(settings, opts).await
        }
        Command::Audit(args) => print_audit(settings, args).await,
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    role,
                    name,
                    password_stdin,
                },
        } => create_user(settings, email, role, name, password_stdin).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if let Err(e) = settings.require_gateway() {
        eprintln!("roost: configuration error: {e}");
        std::process::exit(2);
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let applied = migrations::run(&settings.database_url).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for version in applied {
        println!("applied {version}");
    }
    Ok(())
}

async fn seed_database(settings: Settings, opts: roost::seed::SeedOptions) -> anyhow::Result<()> {
    migrations::run(&settings.database_url).await?;
    let db = Db::connect(&settings.database_url, Some(2))?;
    println!("{}", roost::seed::run(&db, opts).await?);
    Ok(())
}

async fn print_audit(settings: Settings, q: AuditArgs) -> anyhow::Result<()> {
    use roost::domain::audit::{Action, ObjectType, parse_since};
    use std::io::Write;
    let since = parse_since(&q.since).map_err(|e| anyhow::anyhow!("--since: {}", e.message))?;
    let action = q
        .action
        .map(|a| {
            Action::parse(&a).ok_or_else(|| anyhow::anyhow!("--action: no action is named {a:?}"))
        })
        .transpose()?;
    let object_type = q
        .object_type
        .map(|t| {
            ObjectType::parse(&t)
                .ok_or_else(|| anyhow::anyhow!("--object-type: no type is named {t:?}"))
        })
        .transpose()?;
    migrations::run(&settings.database_url).await?;
    let db = Db::connect(&settings.database_url, Some(1))?;
    let mut filter = roost::db::audit::AuditFilter {
        actor_id: q.actor_id,
        action: action.map(|a| a.as_str().to_owned()),
        object_type: object_type.map(|t| t.as_str().to_owned()),
        object_id: q.object_id,
        since: Some(since),
        before_id: None,
        limit: 500,
    };
    let mut left = q.limit.unwrap_or(usize::MAX);
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let rows = roost::services::audit::read(&db, filter.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        for row in rows.into_iter().take(left) {
            let entry = roost::api::rest::audit::AuditEntryResponse::from(row);
            writeln!(out, "{}", serde_json::to_string(&entry)?)?;
            left -= 1;
        }
        filter.before_id = Some(last);
    }
    Ok(())
}

async fn create_user(
    settings: Settings,
    email: String,
    role: String,
    name: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {}", e.message))?;
    let role: Role = role
        .parse()
        .map_err(|_| anyhow::anyhow!("--role: unknown role"))?;
    let name = name.unwrap_or_else(|| {
        email
            .as_str()
            .split('@')
            .next()
            .unwrap_or("admin")
            .to_owned()
    });
    let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    let (raw_password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else if let Ok(p) = std::env::var("ROOST_USER_PASSWORD") {
        (p, false)
    } else {
        (roost::auth::token::generate().0, true)
    };
    let password =
        Password::parse(&raw_password).map_err(|e| anyhow::anyhow!("password: {}", e.message))?;

    migrations::run(&settings.database_url).await?;
    let db = Db::connect(&settings.database_url, Some(1))?;
    let user = accounts::create(
        &db,
        &roost::commit::Commit::unkeyed(roost::domain::audit::AuditActor::cli()),
        NewAccount {
            email,
            name,
            password,
            role,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("created {} user {} (id {})", user.role, user.email, user.id);
    if generated {
        println!("password: {raw_password}");
        println!("(shown once; change it with PATCH /api/v1/users/me)");
    }
    Ok(())
}
