//! Encoding throughput, in rows per second, of the Parquet, CSV and NDJSON sinks on 100,000
//! synthetic contact rows of 26 columns shaped like a real contact export (names, emails,
//! phones, tags, timestamps, a decimal, custom fields as JSON, a sprinkling of nulls).
//!
//! A second group, `map_and_encode`, measures the export's writer stage as a whole: 20,000 raw
//! contact records from the sandbox's generator (messy, with custom fields) mapped by the
//! default mapping (~90 columns) and by `mappings/analytics.toml`, then encoded as Parquet.
//!
//! Output goes to `io::sink()`, so this measures encoding and compression, not the disk.
//! Sample counts are small so `cargo bench --bench encode` runs in under a minute.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ghl_etl::sink::{Encoder, Format, SinkOptions};
use ghl_etl::table::{Column, ColumnType, Row, TableKind, TableSchema, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 100_000;

fn contact_schema() -> Arc<TableSchema> {
    use ColumnType::*;
    let cols: [(&str, ColumnType); 26] = [
        ("id", String),
        ("location_id", String),
        ("first_name", String),
        ("last_name", String),
        ("contact_name", String),
        ("email", String),
        ("phone", String),
        ("company_name", String),
        ("address1", String),
        ("city", String),
        ("state", String),
        ("postal_code", String),
        ("country", String),
        ("source", String),
        ("type", String),
        ("assigned_to", String),
        ("timezone", String),
        ("dnd", Bool),
        ("tags", ListString),
        ("date_added", Timestamp),
        ("date_updated", Timestamp),
        ("date_of_birth", Date),
        ("lead_score", Int),
        ("engagement", Float),
        (
            "lifetime_value",
            Decimal {
                precision: 12,
                scale: 2,
            },
        ),
        ("custom_fields", Json),
    ];
    Arc::new(TableSchema {
        table: TableKind::Contacts,
        columns: cols
            .into_iter()
            .map(|(name, ty)| Column {
                name: name.to_string(),
                ty,
            })
            .collect(),
    })
}

fn contact_rows(n: usize) -> Vec<Row> {
    const FIRST: [&str; 8] = [
        "Ana", "Ben", "Chloé", "Dmitri", "Emeka", "Fatima", "Guo", "Hana",
    ];
    const LAST: [&str; 8] = [
        "Smith", "García", "Nguyen", "Okafor", "Müller", "Rossi", "Kim", "O'Brien",
    ];
    const CITIES: [&str; 6] = ["Austin", "Lagos", "München", "Osaka", "Lima", "Toronto"];
    const TAGS: [&str; 6] = [
        "lead",
        "vip",
        "newsletter",
        "webinar-2024",
        "cold",
        "customer",
    ];
    let mut rng = SmallRng::seed_from_u64(7);
    let base_ms = 1_600_000_000_000_i64;
    (0..n)
        .map(|i| {
            let first = FIRST[rng.random_range(0..FIRST.len())];
            let last = LAST[rng.random_range(0..LAST.len())];
            let birthday = rng.random_range(-10_000..15_000);
            let added = base_ms + i as i64 * 37_000 + rng.random_range(0..1000);
            let maybe =
                |rng: &mut SmallRng, v: Value| if rng.random_bool(0.8) { v } else { Value::Null };
            let s = |v: std::string::String| Value::String(v);
            let tags: Vec<std::string::String> = (0..rng.random_range(0..4))
                .map(|_| TAGS[rng.random_range(0..TAGS.len())].to_string())
                .collect();
            vec![
                s(format!("ct{i:018x}")),
                s("ve9EPM428h8vShlRW1KT".into()),
                s(first.into()),
                s(last.into()),
                s(format!("{first} {last}")),
                s(format!(
                    "{}.{}{i}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                )),
                maybe(&mut rng, s(format!("+1555{:07}", i % 10_000_000))),
                maybe(&mut rng, s(format!("{last} & Co"))),
                maybe(&mut rng, s(format!("{} Main St", i % 9_999))),
                s(CITIES[i % CITIES.len()].into()),
                maybe(&mut rng, s("CA".into())),
                maybe(&mut rng, s(format!("{:05}", i % 99_999))),
                s("US".into()),
                s(if i % 3 == 0 { "form" } else { "import" }.into()),
                s("lead".into()),
                maybe(&mut rng, s("Ab12Cd34Ef56Gh78Ij90".into())),
                s("America/Chicago".into()),
                Value::Bool(rng.random_bool(0.1)),
                Value::List(tags),
                Value::Timestamp(added),
                Value::Timestamp(added + rng.random_range(0..86_400_000)),
                maybe(&mut rng, Value::Date(birthday)),
                Value::Int(rng.random_range(0..100)),
                Value::Float(rng.random::<f64>()),
                Value::Decimal(rng.random_range(0..10_000_000)),
                Value::Json(serde_json::json!([
                    {"id": "f1", "value": rng.random_range(0..1000)},
                    {"id": "f2", "value": "blue"}
                ])),
            ]
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let schema = contact_schema();
    let rows = contact_rows(ROWS);
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    for format in [Format::Parquet, Format::Csv, Format::Ndjson] {
        let opts = SinkOptions {
            format,
            ..SinkOptions::default()
        };
        group.bench_function(format.extension(), |b| {
            b.iter(|| {
                let mut enc =
                    Encoder::new(std::io::sink(), schema.clone(), &opts).expect("encoder");
                for row in &rows {
                    enc.write(row, None).expect("row");
                }
                black_box(enc.finish().expect("finish"));
            })
        });
    }
    group.finish();
}

fn map_and_encode(c: &mut Criterion) {
    use ghl_etl::mapping::{CustomFieldInfo, Mapping, RecordContext, RowOutcome};
    use ghl_etl::sandbox::{SandboxConfig, SandboxState};
    const N: usize = 20_000;
    let state = SandboxState::new(SandboxConfig {
        contacts: N,
        ..SandboxConfig::default()
    })
    .expect("sandbox data");
    let location = state.store().location_ids()[0].clone();
    let records: Vec<serde_json::Value> = state
        .store()
        .contact_ids(&location)
        .iter()
        .filter_map(|id| state.store().contact(id))
        .collect();
    let fields: Vec<CustomFieldInfo> = state
        .store()
        .custom_fields(&location)
        .iter()
        .map(|f| CustomFieldInfo {
            id: f["id"].as_str().unwrap_or_default().to_string(),
            name: f["name"].as_str().unwrap_or_default().to_string(),
            field_key: f["fieldKey"].as_str().map(str::to_string),
            data_type: f["dataType"].as_str().map(str::to_string),
        })
        .collect();
    let analytics = Mapping::from_path(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/analytics.toml"
    )))
    .expect("analytics mapping");
    let mut group = c.benchmark_group("map_and_encode");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    let opts = SinkOptions::default();
    for (name, mapping) in [
        ("default_mapping_parquet", Mapping::default_for(&fields)),
        ("analytics_parquet", analytics),
    ] {
        let table = mapping.table(TableKind::Contacts).expect("contacts");
        let schema = Arc::new(table.schema().clone());
        let ctx = RecordContext {
            location_id: &location,
            contact_id: None,
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut enc =
                    Encoder::new(std::io::sink(), schema.clone(), &opts).expect("encoder");
                for r in &records {
                    if let RowOutcome::Row(row) = table.apply(r, &ctx) {
                        enc.write(&row, Some(r)).expect("row");
                    }
                }
                black_box(enc.finish().expect("finish"));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, map_and_encode);
criterion_main!(benches);
