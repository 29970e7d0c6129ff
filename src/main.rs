//! The `ghl-etl` binary: parse flags, set up logging, run one command, print its error once,
//! exit with its code. Everything else lives in the library.

use std::io::IsTerminal;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use ghl_etl::cli::{AuthCommand, Cli, Command, LogFormat, MappingCommand};
use ghl_etl::exit::{self, JobError};
use ghl_etl::job::Ui;
use ghl_etl::{check, export, load, sandbox, tag};

/// mimalloc instead of glibc malloc: the pipeline parses pages on async workers and frees the
/// records on the writer thread, and glibc's arena locks made those cross-thread frees the
/// largest cost of a contacts-only export.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Colour only for a person at a terminal, and never when `NO_COLOR` is set (no-color.org):
/// a cron job's log file must not fill with escape codes.
fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        // The sandbox (crate `ghl_sandbox`) is as quiet as other crates by default, and as
        // talkative as ours with -v and -vv.
        (false, 0) => "warn,ghl_etl=info,ghl_sandbox=warn",
        (false, 1) => "info,ghl_etl=debug,ghl_sandbox=debug",
        // Other crates stay at warn: the HTTP trace is ours (`api::transport`), and it never
        // shows headers or bodies unless --trace-bodies asks for bodies.
        _ => "warn,ghl_etl=trace,ghl_sandbox=trace",
    };
    let filter = EnvFilter::try_from_env("GHL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder.with_target(false).with_ansi(use_colour()).init(),
    }
}

fn main() {
    let cli = Cli::parse();
    // Before anything is created: every file and folder of the run is owner-only by default.
    ghl_etl::private::set_umask(cli.umask);
    ghl_etl::lease::wait_for_holders(cli.wait);
    ghl_etl::api::set_trace_bodies(cli.trace_bodies);
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    let json_logs = cli.log_format == LogFormat::Json;
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            report(&err, json_logs);
            err.exit_code()
        }
    };
    std::process::exit(code);
}

/// Print a command's error once, with what to do about it. Every error's text is whole (it
/// names its own cause), so nothing is walked or repeated.
/// With `--log-format json` it is one JSON log line (`error`, `advice`, `exit_code`), so a log
/// shipper reads every line of the run.
fn report(err: &JobError, json_logs: bool) {
    let advice = if err.rerun_resumes() {
        Some("Rerun the same command to resume where it stopped.")
    } else if err.api().is_some_and(|e| e.needs_a_change()) {
        Some(
            "A rerun alone meets the same answer: change what the message names (the mapping, \
             the input, --location or --base-url) first; the rerun then resumes where this one stopped.",
        )
    } else {
        None
    };
    if json_logs {
        let text = err.to_string();
        let message = text.strip_prefix("error: ").unwrap_or(&text);
        tracing::error!(
            error = message,
            advice,
            exit_code = err.exit_code(),
            "The run failed."
        );
        return;
    }
    match err {
        // Each of a mapping's errors already opens with `error: `.
        JobError::Mapping(_) => eprintln!("{err}"),
        _ => eprintln!("error: {err}"),
    }
    if let Some(advice) = advice {
        eprintln!("{advice}");
    }
}

async fn run(cli: Cli) -> Result<i32, JobError> {
    let ui = Ui {
        progress_every_s: cli.progress_every,
        quiet: cli.quiet,
        json_logs: cli.log_format == LogFormat::Json,
    };
    match cli.command {
        Command::Export(args) => {
            let (conn, plan) = args.resolve()?;
            let summary = export::export(&conn, &plan, ui).await?;
            Ok(if summary.rejected_total() > 0 {
                exit::RECORD_FAILURES
            } else {
                exit::OK
            })
        }
        Command::Load(args) => {
            let (conn, plan) = args.resolve()?;
            let summary = load::load(&conn, &plan, ui).await?;
            Ok(if summary.failed > 0 {
                exit::RECORD_FAILURES
            } else {
                exit::OK
            })
        }
        Command::Tag(args) => tag_or_bulk(args.resolve()?, ui).await,
        Command::Bulk(args) => tag_or_bulk(args.resolve()?, ui).await,
        Command::Auth {
            command:
                AuthCommand::Check {
                    conn,
                    location,
                    write,
                },
        } => check::auth_check(&conn.resolve()?, &location, write).await,
        Command::Mapping {
            command:
                MappingCommand::Check {
                    file,
                    location,
                    conn,
                },
        } => check::mapping_check(&file, location.as_deref(), &conn.resolve()?).await,
        Command::Listen(args) => {
            let plan = args.resolve()?;
            let s = ghl_etl::listen::run(plan).await?;
            if !ui.quiet {
                eprintln!("{s}");
            }
            Ok(exit::OK)
        }
        Command::Sandbox(args) => sandbox::run_foreground(args.resolve()?)
            .await
            .map(|_| exit::OK)
            .map_err(|e| JobError::usage(e.to_string())),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ghl-etl",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Man => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                // `ghl-etl man | head`: the reader has what it wanted.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(JobError::io("write the manual page to", "stdout", e))
                }
                _ => Ok(exit::OK),
            }
        }
    }
}

/// `tag` and `bulk`: one job, exit 1 when any row failed.
async fn tag_or_bulk(
    (conn, plan): (ghl_etl::job::ConnectionPlan, tag::TagPlan),
    ui: ghl_etl::job::Ui,
) -> Result<i32, JobError> {
    let summary = tag::tag(&conn, &plan, ui).await?;
    Ok(if summary.failed > 0 {
        exit::RECORD_FAILURES
    } else {
        exit::OK
    })
}
