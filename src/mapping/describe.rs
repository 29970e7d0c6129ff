//! What `ghl-etl mapping check` prints of a mapping.

use super::*;

/// The `ghl-etl mapping check FILE` report: file settings, then per table its filters and
/// columns (name, type, source and transforms, flags).
pub fn describe(mapping: &Mapping) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "mapping {}", mapping.file);
    if mapping.direction == Direction::Load {
        let _ = writeln!(out, "  direction: load (input columns -> request bodies)");
    }
    let _ = writeln!(
        out,
        "  csv_safe: {}",
        mapping
            .csv_safe
            .map_or("not set (the output's default)".to_string(), |b| b
                .to_string())
    );
    let _ = writeln!(
        out,
        "  list_separator: {}",
        mapping
            .list_separator
            .as_deref()
            .map_or("not set (\";\")".to_string(), |s| format!("{s:?}"))
    );
    if mapping.uses_custom_fields() {
        let _ = writeln!(
            out,
            "  custom fields by name: resolved against the location at export time"
        );
    }
    for table in &mapping.tables {
        let _ = writeln!(
            out,
            "\n{} ({} columns, on_error = {})",
            table.kind,
            table.columns.len(),
            table.on_error.spelling()
        );
        if !table.filters.is_empty() {
            let conds: Vec<String> = table.filters.iter().map(Filter::describe).collect();
            let _ = writeln!(out, "  keep records where {}", conds.join(" and "));
        }
        let name_w = table
            .columns
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        let type_w = table
            .columns
            .iter()
            .map(|c| c.ty.spelling().len())
            .max()
            .unwrap_or(0);
        for col in &table.columns {
            let mut source = match &col.source {
                Some(p) => p.text.clone(),
                None => String::new(),
            };
            for step in &col.steps {
                if !source.is_empty() {
                    source.push_str(" | ");
                }
                source.push_str(&step.text);
            }
            let mut flags = Vec::new();
            if col.required {
                flags.push("required".to_string());
            }
            if col.on_error != table.on_error {
                flags.push(format!("on_error = {}", col.on_error.spelling()));
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            let line = format!(
                "  {:name_w$}  {:type_w$}  {source}{flags}",
                col.name,
                col.ty.spelling(),
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out
}
