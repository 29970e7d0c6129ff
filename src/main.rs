//! The `ghl-etl` binary: parse flags, set up logging, run one command, turn the outcome into
//! an exit code. Everything else lives in the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use ghl_etl::cli::{AuthCommand, Cli, Command, LogFormat, MappingCommand};
use ghl_etl::commands;

/// mimalloc instead of glibc malloc: the pipeline parses pages on async workers and frees the
/// records on the writer thread, and glibc's arena locks made those cross-thread frees the
/// largest cost of a contacts-only export.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,ghl_etl=info,ghl_etl::sandbox=warn",
        (false, 1) => "info,ghl_etl=debug",
        _ => "debug,ghl_etl=trace",
    };
    let filter = EnvFilter::try_from_env("GHL_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

fn main() {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(commands::EXIT_USAGE);
        }
    };
    let code = runtime.block_on(run(cli));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Export(args) => {
            ghl_etl::export::run_cli(*args, cli.quiet, cli.log_format == LogFormat::Json).await
        }
        Command::Auth {
            command:
                AuthCommand::Check {
                    conn,
                    location,
                    write,
                },
        } => commands::auth_check(&conn, &location, write, None).await,
        Command::Mapping {
            command:
                MappingCommand::Check {
                    file,
                    location,
                    conn,
                },
        } => ghl_etl::export::mapping_check(&file, location.as_deref(), &conn).await,
        Command::Sandbox(args) => ghl_etl::sandbox::run_cli(args)
            .await
            .map(|_| commands::EXIT_OK),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = commands::exit_code_for(&err);
            eprintln!("error: {err:#}");
            code
        }
    }
}
