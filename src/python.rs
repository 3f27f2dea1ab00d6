//! The few Python behaviours Elastic's rule code leans on, reproduced so that messages and
//! comparisons come out byte-for-byte the same: `str()`/`repr()` of JSON values, `type(x).__name__`,
//! `float(str)`, `str.casefold()`, `connectors.utils.shorten_str` and `re.match`'s anchoring.
//! Shared by the sync rules (`sync::rules`) and the sources' own rules (`source::s3::rules`).

use regex::Regex;
use serde_json::Value;

/// `type(x).__name__` of the Python object a JSON value decodes to.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a `'` and no `"`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a `float` (shortest round-trip digits; exponent form below 1e-4 and from
/// 1e16 on: `1.0`, `0.5`, `1e+16`, `1.5e-05`, `inf`, `nan`).
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, e.g. `-1.5e3`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // position of the decimal point within `digits`
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

/// Python's `str()` of the object a JSON value decodes to (`None`, `True`, `1.0`, `['a', 1]`, …).
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python's `repr()` of the object a JSON value decodes to.
pub fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) if !n.is_f64() => i.to_string(),
            (_, Some(u), _) if !n.is_f64() => u.to_string(),
            (_, _, Some(f)) => float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => repr_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// `float(s)` for a `str`: surrounding whitespace ignored, `_` allowed between digits, `inf`/`nan`
/// spellings accepted; `None` where Python raises `ValueError`.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let cleaned;
    let t = if t.contains('_') {
        let chars: Vec<char> = t.chars().collect();
        let ok = chars.iter().enumerate().all(|(i, c)| {
            *c != '_'
                || (i > 0
                    && i + 1 < chars.len()
                    && chars[i - 1].is_ascii_digit()
                    && chars[i + 1].is_ascii_digit())
        });
        if !ok {
            return None;
        }
        cleaned = t.replace('_', "");
        cleaned.as_str()
    } else {
        t
    };
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() > 1 {
        return None;
    }
    match unsigned {
        "inf" | "infinity" | "nan" => lower.parse().ok(),
        _ if unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') => t.parse().ok(),
        _ => None,
    }
}

/// `str.casefold()`, enough of it for the ASCII enum names it is compared against: lower-case plus
/// the folds that can turn non-ASCII letters into ASCII ones (`ſ` → `s`, `ﬅ`/`ﬆ` → `st`, `ß` → `ss`).
pub fn casefold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ſ' => out.push('s'),
            'ß' | 'ẞ' => out.push_str("ss"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// `connectors.utils.shorten_str(string, shorten_by)`: removes `shorten_by` characters from the
/// middle, replacing them with `...`, keeping at least one character at each end; when the kept
/// count is odd the extra character stays at the front.
pub fn shorten_str(s: &str, shorten_by: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len() as i64;
    if len == 0 {
        return String::new();
    }
    if shorten_by < 3 {
        return s.to_string();
    }
    let by = (len - 2).min(shorten_by as i64);
    let keep = ((len - by) / 2) as usize;
    let front = if (by + len) % 2 == 0 { keep } else { keep + 1 };
    let head: String = chars[..front].iter().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{head}...{tail}")
}

/// Compiles a rule value as Python's `re.match` uses it: anchored at the start only.
/// The pattern is first compiled alone so that an unbalanced `)` cannot be "fixed" by the wrapper.
pub fn compile_prefix_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| regex_reason(&e))?;
    Regex::new(&format!("^(?:{pattern})")).map_err(|e| regex_reason(&e))
}

/// The one-line reason of a regex compile error (`unclosed group`, …).
pub fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shorten_like_python() {
        assert_eq!(shorten_str("abcdefgh", 1), "abcdefgh");
        assert_eq!(shorten_str("abcdefgh", 4), "ab...gh");
        assert_eq!(shorten_str("abcdefgh", 5), "ab...h");
        assert_eq!(shorten_str("abcdefgh", 1000), "a...h");
        assert_eq!(shorten_str("", 26), "");
        assert_eq!(shorten_str("1", 26), "1...1");
        assert_eq!(shorten_str("r1", 26), "r...1");
        let uuid = "4fd6e6c4-6a2c-4dc3-9a91-0e6e5a3ac3a1";
        assert_eq!(shorten_str(uuid, 26), "4fd6e...ac3a1");
        // 29 characters: 3 kept, the odd one at the front.
        assert_eq!(shorten_str("abcdefghijklmnopqrstuvwxyz012", 26), "ab...2");
    }

    #[test]
    fn float_repr_like_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(0.00001), "1e-05");
        assert_eq!(float_repr(1.5e-7), "1.5e-07");
        assert_eq!(float_repr(123456.0), "123456.0");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.25e20), "1.25e+20");
        assert_eq!(float_repr(f64::INFINITY), "inf");
        assert_eq!(float_repr(f64::NAN), "nan");
    }

    #[test]
    fn str_and_repr_like_python() {
        assert_eq!(str_of(&json!(null)), "None");
        assert_eq!(str_of(&json!(true)), "True");
        assert_eq!(str_of(&json!(12)), "12");
        assert_eq!(str_of(&json!(12.0)), "12.0");
        assert_eq!(str_of(&json!("a'b")), "a'b");
        assert_eq!(str_of(&json!(["a", 1, null])), "['a', 1, None]");
        assert_eq!(str_of(&json!({"k": "v"})), "{'k': 'v'}");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(repr_str("'\""), "'\\'\"'");
        assert_eq!(type_name(&json!(1)), "int");
        assert_eq!(type_name(&json!(1.5)), "float");
        assert_eq!(type_name(&json!(null)), "NoneType");
    }

    #[test]
    fn float_parsing_like_python() {
        assert_eq!(parse_float("12"), Some(12.0));
        assert_eq!(parse_float(" 1.5 "), Some(1.5));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("-.5"), Some(-0.5));
        assert_eq!(parse_float("5."), Some(5.0));
        assert_eq!(parse_float("1_000"), Some(1000.0));
        assert_eq!(parse_float("Infinity"), Some(f64::INFINITY));
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("_1"), None);
        assert_eq!(parse_float("abc"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("0x10"), None);
        assert_eq!(parse_float("--1"), None);
        assert_eq!(parse_float("1,5"), None);
    }

    #[test]
    fn casefold_folds_to_ascii() {
        assert_eq!(casefold("EQUALS"), "equals");
        assert_eq!(casefold("ſtarts_with"), "starts_with");
        assert_eq!(casefold("Ends_With"), "ends_with");
    }
}
