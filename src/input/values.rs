//! Arrow values as JSON: which Arrow types an input column may have, and the JSON value of one
//! cell. Reading the Parquet file is `parquet`'s job; the conversions are listed on
//! [`super::open`].

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray};
use arrow_schema::{DataType, TimeUnit};
use chrono::SecondsFormat;
use serde_json::{Map, Number, Value};

/// Whether every value of this type can be converted.
pub(super) fn supported(t: &DataType) -> bool {
    use DataType::*;
    match t {
        Null
        | Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Binary
        | LargeBinary
        | BinaryView
        | Date32
        | Date64
        | Timestamp(_, _)
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => true,
        List(f) | LargeList(f) | FixedSizeList(f, _) | Map(f, _) => supported(f.data_type()),
        Struct(fields) => fields.iter().all(|f| supported(f.data_type())),
        Dictionary(_, values) => supported(values),
        _ => false,
    }
}

/// A top-level cell. Structs and maps become JSON text, as the export writes its JSON columns:
/// an input row is flat, and a mapping reads a cell as one value.
pub(super) fn cell(array: &dyn Array, i: usize) -> Result<Value, String> {
    let value = value(array, i)?;
    Ok(match (array.data_type(), value) {
        (DataType::Struct(_) | DataType::Map(_, _), v @ Value::Object(_)) => {
            Value::String(v.to_string())
        }
        (_, v) => v,
    })
}

/// The JSON value of row `i`; the error says why it has none (bytes that are not UTF-8).
fn value(array: &dyn Array, i: usize) -> Result<Value, String> {
    use DataType::*;
    if array.is_null(i) || matches!(array.data_type(), Null) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        Boolean => Value::Bool(array.as_boolean().value(i)),
        Int8 => int::<Int8Type>(array, i),
        Int16 => int::<Int16Type>(array, i),
        Int32 => int::<Int32Type>(array, i),
        Int64 => int::<Int64Type>(array, i),
        UInt8 => int::<UInt8Type>(array, i),
        UInt16 => int::<UInt16Type>(array, i),
        UInt32 => int::<UInt32Type>(array, i),
        UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(i)),
        Float16 => float(array.as_primitive::<Float16Type>().value(i).to_f64()),
        // Through the shortest text of the f32, so 0.1 stays 0.1 and not 0.10000000149011612.
        Float32 => float(short_f32(array.as_primitive::<Float32Type>().value(i))),
        Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        Utf8 => Value::from(array.as_string::<i32>().value(i)),
        LargeUtf8 => Value::from(array.as_string::<i64>().value(i)),
        Utf8View => Value::from(array.as_string_view().value(i)),
        // Some writers store text as plain binary; it is read as text when it is UTF-8.
        Binary => text(array.as_binary::<i32>().value(i))?,
        LargeBinary => text(array.as_binary::<i64>().value(i))?,
        BinaryView => text(array.as_binary_view().value(i))?,
        Date32 => date(array.as_primitive::<Date32Type>(), i)?,
        Date64 => date(array.as_primitive::<Date64Type>(), i)?,
        Timestamp(unit, _) => timestamp(array, *unit, i)?,
        Decimal32(_, _) => Value::from(array.as_primitive::<Decimal32Type>().value_as_string(i)),
        Decimal64(_, _) => Value::from(array.as_primitive::<Decimal64Type>().value_as_string(i)),
        Decimal128(_, _) => Value::from(array.as_primitive::<Decimal128Type>().value_as_string(i)),
        Decimal256(_, _) => Value::from(array.as_primitive::<Decimal256Type>().value_as_string(i)),
        List(_) => list(&*array.as_list::<i32>().value(i))?,
        LargeList(_) => list(&*array.as_list::<i64>().value(i))?,
        FixedSizeList(_, _) => list(&*array.as_fixed_size_list().value(i))?,
        Struct(_) => structure(array, i)?,
        Map(_, _) => map(array, i)?,
        Dictionary(_, _) => dictionary(array, i)?,
        other => return Err(format!("values of type {other} cannot be read")),
    })
}

fn int<T>(array: &dyn Array, i: usize) -> Value
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    Value::from(array.as_primitive::<T>().value(i).into())
}

/// JSON has no NaN or infinity; they are read as no value.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn short_f32(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::NAN)
}

fn text(bytes: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(bytes)
        .map(Value::from)
        .map_err(|_| "invalid UTF-8".to_string())
}

fn date<T: ArrowTemporalType>(array: &PrimitiveArray<T>, i: usize) -> Result<Value, String>
where
    i64: From<T::Native>,
{
    let d = array.value_as_date(i).ok_or("date out of range")?;
    Ok(Value::from(d.format("%Y-%m-%d").to_string()))
}

/// RFC 3339 in UTC. Milliseconds at least, as the export writes; finer units keep their digits.
fn timestamp(array: &dyn Array, unit: TimeUnit, i: usize) -> Result<Value, String> {
    let (t, digits) = match unit {
        TimeUnit::Second => (
            array
                .as_primitive::<TimestampSecondType>()
                .value_as_datetime(i),
            SecondsFormat::Millis,
        ),
        TimeUnit::Millisecond => (
            array
                .as_primitive::<TimestampMillisecondType>()
                .value_as_datetime(i),
            SecondsFormat::Millis,
        ),
        TimeUnit::Microsecond => (
            array
                .as_primitive::<TimestampMicrosecondType>()
                .value_as_datetime(i),
            SecondsFormat::Micros,
        ),
        TimeUnit::Nanosecond => (
            array
                .as_primitive::<TimestampNanosecondType>()
                .value_as_datetime(i),
            SecondsFormat::Nanos,
        ),
    };
    // Arrow stores instants in UTC whatever the zone; a zone-less column is taken as UTC.
    let t = t.ok_or("timestamp out of range")?.and_utc();
    Ok(Value::from(t.to_rfc3339_opts(digits, true)))
}

fn list(items: &dyn Array) -> Result<Value, String> {
    (0..items.len())
        .map(|j| value(items, j))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn structure(array: &dyn Array, i: usize) -> Result<Value, String> {
    let s = array.as_struct();
    let mut object = Map::new();
    for (name, column) in s.column_names().into_iter().zip(s.columns()) {
        object.insert(name.to_string(), value(&**column, i)?);
    }
    Ok(Value::Object(object))
}

/// A map as an object; keys that are not strings are written as their JSON text.
fn map(array: &dyn Array, i: usize) -> Result<Value, String> {
    let entries = array.as_map().value(i);
    let (keys, values) = (entries.column(0), entries.column(1));
    let mut object = Map::new();
    for j in 0..entries.len() {
        let key = match value(&**keys, j)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        object.insert(key, value(&**values, j)?);
    }
    Ok(Value::Object(object))
}

fn dictionary(array: &dyn Array, i: usize) -> Result<Value, String> {
    let dict = array
        .as_any_dictionary_opt()
        .ok_or("not a dictionary array")?;
    let key = key_at(dict.keys(), i).ok_or("dictionary key out of range")?;
    value(&**dict.values(), key)
}

/// Row `i` of a dictionary's keys (any integer type) as an index into its values.
fn key_at(keys: &dyn Array, i: usize) -> Option<usize> {
    let k: i128 = match keys.data_type() {
        DataType::Int8 => keys.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => keys.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => keys.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => keys.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => keys.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => keys.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => keys.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => keys.as_primitive::<UInt64Type>().value(i).into(),
        _ => return None,
    };
    usize::try_from(k).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Int64Builder, StringDictionaryBuilder};
    use arrow_array::{ArrayRef, Float32Array, Int64Array, StringArray, StructArray};
    use arrow_schema::Field;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn structs_become_json_text_and_dictionaries_their_values() {
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
        let s = StructArray::from(vec![
            (Arc::new(Field::new("id", DataType::Int64, false)), ids),
            (Arc::new(Field::new("name", DataType::Utf8, true)), names),
        ]);
        assert_eq!(cell(&s, 0).unwrap(), json!(r#"{"id":1,"name":"a"}"#));
        assert_eq!(cell(&s, 1).unwrap(), json!(r#"{"id":2,"name":null}"#));

        let mut b = StringDictionaryBuilder::<Int8Type>::new();
        b.extend([Some("red"), None, Some("red"), Some("blue")]);
        let d = b.finish();
        let got: Vec<_> = (0..4).map(|i| cell(&d, i).unwrap()).collect();
        assert_eq!(
            got,
            [json!("red"), Value::Null, json!("red"), json!("blue")]
        );
    }

    #[test]
    fn floats_keep_their_short_form_and_nan_is_null() {
        let f = Float32Array::from(vec![0.1, f32::NAN]);
        assert_eq!(cell(&f, 0).unwrap(), json!(0.1));
        assert_eq!(cell(&f, 1).unwrap(), Value::Null);
        let mut i = Int64Builder::new();
        i.append_value(i64::MAX);
        assert_eq!(cell(&i.finish(), 0).unwrap(), json!(i64::MAX));
    }

    #[test]
    fn which_types_are_supported() {
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        assert!(supported(&list(DataType::Utf8)));
        assert!(supported(&DataType::Timestamp(TimeUnit::Nanosecond, None)));
        assert!(!supported(&DataType::Time64(TimeUnit::Microsecond)));
        assert!(!supported(&list(DataType::Duration(TimeUnit::Second))));
        assert!(!supported(&DataType::FixedSizeBinary(16)));
    }
}
