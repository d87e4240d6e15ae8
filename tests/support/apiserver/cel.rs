//! A small evaluator for the part of CEL that the HyperShift CRDs use in
//! `x-kubernetes-validations`: `self`/`oldSelf`, field access, `has()`,
//! comparisons, `&&`/`||`/`!`, `?:`, `in`, arithmetic, list literals,
//! `size()`, `matches()`, `startsWith()`/`endsWith()`/`contains()` and the
//! `all`/`exists`/`exists_one`/`filter`/`map` macros.
//!
//! It is not a general CEL engine. A rule that uses anything else (optional
//! field syntax `.?`, `url()`, `isURL()`, `split()`, `format()`, map literals,
//! ...) fails to parse or to evaluate and is then skipped, i.e. treated as
//! passing — the server never rejects an object because of a rule it cannot
//! read. Runtime errors (a missing field, a type mismatch) skip the rule too;
//! the real server would report them as validation errors instead.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use regex::Regex;
use serde_json::{Number, Value};

/// Parse depth limit, so a hostile rule cannot overflow the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Macro {
    All,
    Exists,
    ExistsOne,
    Filter,
    Map,
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    List(Vec<Expr>),
    Ident(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Has(Box<Expr>, String),
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    Comprehension(Box<Expr>, Macro, String, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    expr: Expr,
    /// Transition rules compare with the stored object and only run on update.
    pub uses_old_self: bool,
}

/// Compiles `source`, caching the result; `None` for unsupported rules.
pub fn compile(source: &str) -> Option<Arc<Rule>> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<Rule>>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(source.to_string())
        .or_insert_with(|| {
            let tokens = lex(source)?;
            let mut parser = Parser { tokens, pos: 0, depth: 0 };
            let expr = parser.expr()?;
            if parser.pos != parser.tokens.len() {
                return None;
            }
            Some(Arc::new(Rule { uses_old_self: mentions(&expr, "oldSelf"), expr }))
        })
        .clone()
}

impl Rule {
    /// Evaluates the rule; `None` when it cannot be evaluated (skipped).
    pub fn check(&self, self_value: &Value, old_self: Option<&Value>) -> Option<bool> {
        let mut env = vec![("self".to_string(), self_value.clone())];
        if let Some(old) = old_self {
            env.push(("oldSelf".to_string(), old.clone()));
        }
        match eval(&self.expr, &mut env) {
            Ok(Value::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

/// Whether `pattern` (RE2 syntax) finds a match in `text`, with compiled
/// patterns cached. `None` when the pattern does not compile.
pub fn regex_matches(pattern: &str, text: &str) -> Option<bool> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(pattern.to_string()).or_insert_with(|| Regex::new(pattern).ok()).as_ref().map(|re| re.is_match(text))
}

fn mentions(expr: &Expr, name: &str) -> bool {
    match expr {
        Expr::Lit(_) => false,
        Expr::Ident(n) => n == name,
        Expr::List(items) => items.iter().any(|e| mentions(e, name)),
        Expr::Member(e, _) | Expr::Has(e, _) | Expr::Not(e) | Expr::Neg(e) => mentions(e, name),
        Expr::Index(a, b)
        | Expr::Binary(_, a, b)
        | Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Comprehension(a, _, _, b) => mentions(a, name) || mentions(b, name),
        Expr::Call(target, _, args) => {
            target.as_ref().is_some_and(|t| mentions(t, name)) || args.iter().any(|e| mentions(e, name))
        }
        Expr::Cond(a, b, c) => mentions(a, name) || mentions(b, name) || mentions(c, name),
    }
}

// ---------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    Op(&'static str),
}

const OPERATORS: [&str; 22] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "?", ":", ".", "(", ")", "[", "]", ",", "+", "-", "*", "/", "%",
];

fn lex(src: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '.' && chars.get(i + 1) == Some(&'?') {
            // Optional field selection is not supported.
            return None;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw = matches!(word.as_str(), "r" | "R");
            if raw && matches!(chars.get(i), Some('\'' | '"')) {
                let (s, next) = lex_string(&chars, i, true)?;
                tokens.push(Tok::Str(s));
                i = next;
            } else {
                tokens.push(Tok::Ident(word));
            }
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let mut float = false;
            if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            if matches!(chars.get(i), Some('u' | 'U')) {
                i += 1;
            }
            tokens.push(if float { Tok::Float(text.parse().ok()?) } else { Tok::Int(text.parse().ok()?) });
        } else if c == '\'' || c == '"' {
            let (s, next) = lex_string(&chars, i, false)?;
            tokens.push(Tok::Str(s));
            i = next;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = OPERATORS.iter().find(|op| rest.starts_with(**op))?;
            tokens.push(Tok::Op(op));
            i += op.chars().count();
        }
    }
    Some(tokens)
}

/// Reads a quoted string starting at `start` (the quote); returns the
/// unescaped text and the index after the closing quote.
fn lex_string(chars: &[char], start: usize, raw: bool) -> Option<(String, usize)> {
    let quote = chars[start];
    if chars.get(start + 1) == Some(&quote) && chars.get(start + 2) == Some(&quote) {
        return None; // triple-quoted strings are not supported
    }
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Some((out, i + 1));
        }
        if c == '\\' && !raw {
            let e = *chars.get(i + 1)?;
            i += 2;
            match e {
                '\\' | '\'' | '"' | '`' | '?' => out.push(e),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'x' | 'u' | 'U' => {
                    let len = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.get(i..i + len)?.iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += len;
                }
                _ => return None,
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    None
}

// ---------------------------------------------------------------- parsing

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, op: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::Op(o)) if *o == op);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, op: &str) -> Option<()> {
        self.eat(op).then_some(())
    }

    fn expr(&mut self) -> Option<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let cond = self.or()?;
        let result = if self.eat("?") {
            let then = self.expr()?;
            self.expect(":")?;
            let otherwise = self.expr()?;
            Expr::Cond(Box::new(cond), Box::new(then), Box::new(otherwise))
        } else {
            cond
        };
        self.depth -= 1;
        Some(result)
    }

    fn or(&mut self) -> Option<Expr> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Expr> {
        let mut left = self.relation()?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.relation()?));
        }
        Some(left)
    }

    fn relation(&mut self) -> Option<Expr> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("==")) => BinOp::Eq,
                Some(Tok::Op("!=")) => BinOp::Ne,
                Some(Tok::Op("<")) => BinOp::Lt,
                Some(Tok::Op("<=")) => BinOp::Le,
                Some(Tok::Op(">")) => BinOp::Gt,
                Some(Tok::Op(">=")) => BinOp::Ge,
                Some(Tok::Ident(w)) if w == "in" => BinOp::In,
                _ => return Some(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.additive()?));
        }
    }

    fn additive(&mut self) -> Option<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Some(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Option<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("%")) => BinOp::Rem,
                _ => return Some(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Option<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let result = if self.eat("!") {
            Expr::Not(Box::new(self.unary()?))
        } else if self.eat("-") {
            Expr::Neg(Box::new(self.unary()?))
        } else {
            self.member()?
        };
        self.depth -= 1;
        Some(result)
    }

    fn member(&mut self) -> Option<Expr> {
        let mut target = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return None;
                };
                self.pos += 1;
                if self.eat("(") {
                    let args = self.args(")")?;
                    target = method_call(target, name, args)?;
                } else {
                    target = Expr::Member(Box::new(target), name);
                }
            } else if self.eat("[") {
                let index = self.expr()?;
                self.expect("]")?;
                target = Expr::Index(Box::new(target), Box::new(index));
            } else {
                return Some(target);
            }
        }
    }

    /// Comma-separated expressions up to the closing `close` token.
    fn args(&mut self, close: &str) -> Option<Vec<Expr>> {
        let mut args = Vec::new();
        if self.eat(close) {
            return Some(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(close) {
                return Some(args);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        let token = self.peek()?.clone();
        self.pos += 1;
        match token {
            Tok::Int(i) => Some(Expr::Lit(Value::from(i))),
            Tok::Float(f) => Some(Expr::Lit(Value::Number(Number::from_f64(f)?))),
            Tok::Str(s) => Some(Expr::Lit(Value::String(s))),
            Tok::Op("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Some(inner)
            }
            Tok::Op("[") => Some(Expr::List(self.args("]")?)),
            Tok::Ident(word) => match word.as_str() {
                "true" => Some(Expr::Lit(Value::Bool(true))),
                "false" => Some(Expr::Lit(Value::Bool(false))),
                "null" => Some(Expr::Lit(Value::Null)),
                _ if self.eat("(") => {
                    let mut args = self.args(")")?;
                    if word == "has" {
                        match (args.pop(), args.is_empty()) {
                            (Some(Expr::Member(target, field)), true) => Some(Expr::Has(target, field)),
                            _ => None,
                        }
                    } else {
                        Some(Expr::Call(None, word, args))
                    }
                }
                _ => Some(Expr::Ident(word)),
            },
            Tok::Op(_) => None,
        }
    }
}

fn method_call(target: Expr, name: String, mut args: Vec<Expr>) -> Option<Expr> {
    let kind = match name.as_str() {
        "all" => Some(Macro::All),
        "exists" => Some(Macro::Exists),
        "exists_one" => Some(Macro::ExistsOne),
        "filter" => Some(Macro::Filter),
        "map" => Some(Macro::Map),
        _ => None,
    };
    match kind {
        Some(kind) => {
            if args.len() != 2 {
                return None;
            }
            let body = args.pop()?;
            let Some(Expr::Ident(var)) = args.pop() else {
                return None;
            };
            Some(Expr::Comprehension(Box::new(target), kind, var, Box::new(body)))
        }
        None => Some(Expr::Call(Some(Box::new(target)), name, args)),
    }
}

// ---------------------------------------------------------------- evaluation

/// Evaluation failed: the rule cannot be decided and is skipped.
#[derive(Debug)]
struct EvalError;

type Eval = Result<Value, EvalError>;
type Env = Vec<(String, Value)>;

fn eval(expr: &Expr, env: &mut Env) -> Eval {
    match expr {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::List(items) => items.iter().map(|e| eval(e, env)).collect::<Result<Vec<_>, _>>().map(Value::Array),
        Expr::Ident(name) => env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).ok_or(EvalError),
        Expr::Member(target, field) => match eval(target, env)? {
            Value::Object(mut map) => map.remove(field).ok_or(EvalError),
            _ => Err(EvalError),
        },
        Expr::Has(target, field) => match eval(target, env)? {
            Value::Object(map) => Ok(Value::Bool(map.contains_key(field))),
            _ => Err(EvalError),
        },
        Expr::Index(target, index) => {
            let target = eval(target, env)?;
            let index = eval(index, env)?;
            match (target, index) {
                (Value::Array(items), Value::Number(n)) => {
                    n.as_u64().and_then(|i| items.get(usize::try_from(i).ok()?).cloned()).ok_or(EvalError)
                }
                (Value::Object(mut map), Value::String(key)) => map.remove(&key).ok_or(EvalError),
                _ => Err(EvalError),
            }
        }
        Expr::Call(target, name, args) => {
            let mut values = Vec::new();
            if let Some(target) = target {
                values.push(eval(target, env)?);
            }
            for arg in args {
                values.push(eval(arg, env)?);
            }
            call(name, &values)
        }
        Expr::Comprehension(target, kind, var, body) => {
            let items = match eval(target, env)? {
                Value::Array(items) => items,
                Value::Object(map) => map.keys().cloned().map(Value::String).collect(),
                _ => return Err(EvalError),
            };
            comprehension(*kind, var, body, items, env)
        }
        Expr::Not(inner) => match eval(inner, env)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            _ => Err(EvalError),
        },
        Expr::Neg(inner) => match eval(inner, env)? {
            Value::Number(n) => negate(&n),
            _ => Err(EvalError),
        },
        Expr::And(a, b) => logical(a, b, false, env),
        Expr::Or(a, b) => logical(a, b, true, env),
        Expr::Cond(cond, then, otherwise) => match eval(cond, env)? {
            Value::Bool(true) => eval(then, env),
            Value::Bool(false) => eval(otherwise, env),
            _ => Err(EvalError),
        },
        Expr::Binary(op, a, b) => {
            let a = eval(a, env)?;
            let b = eval(b, env)?;
            binary(*op, &a, &b)
        }
    }
}

/// `&&` / `||` with CEL's rule that a decisive side wins over an error on
/// the other side. `short` is the value that decides (`true` for `||`).
fn logical(a: &Expr, b: &Expr, short: bool, env: &mut Env) -> Eval {
    let left = eval(a, env);
    if matches!(left, Ok(Value::Bool(v)) if v == short) {
        return Ok(Value::Bool(short));
    }
    let right = eval(b, env);
    match (left, right) {
        (_, Ok(Value::Bool(v))) if v == short => Ok(Value::Bool(short)),
        (Ok(Value::Bool(_)), Ok(Value::Bool(_))) => Ok(Value::Bool(!short)),
        _ => Err(EvalError),
    }
}

fn comprehension(kind: Macro, var: &str, body: &Expr, items: Vec<Value>, env: &mut Env) -> Eval {
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        env.push((var.to_string(), item.clone()));
        let result = eval(body, env);
        env.pop();
        results.push(result);
    }
    let bools = || -> Result<Vec<bool>, EvalError> {
        results
            .iter()
            .map(|r| match r {
                Ok(Value::Bool(b)) => Ok(*b),
                _ => Err(EvalError),
            })
            .collect()
    };
    match kind {
        Macro::All => {
            if results.iter().any(|r| matches!(r, Ok(Value::Bool(false)))) {
                return Ok(Value::Bool(false));
            }
            bools().map(|_| Value::Bool(true))
        }
        Macro::Exists => {
            if results.iter().any(|r| matches!(r, Ok(Value::Bool(true)))) {
                return Ok(Value::Bool(true));
            }
            bools().map(|_| Value::Bool(false))
        }
        Macro::ExistsOne => bools().map(|b| Value::Bool(b.iter().filter(|x| **x).count() == 1)),
        Macro::Filter => {
            let keep = bools()?;
            Ok(Value::Array(items.into_iter().zip(keep).filter(|(_, k)| *k).map(|(v, _)| v).collect()))
        }
        Macro::Map => results.into_iter().collect::<Result<Vec<_>, _>>().map(Value::Array),
    }
}

fn call(name: &str, args: &[Value]) -> Eval {
    match (name, args) {
        ("size", [Value::String(s)]) => Ok(Value::from(s.chars().count())),
        ("size", [Value::Array(a)]) => Ok(Value::from(a.len())),
        ("size", [Value::Object(m)]) => Ok(Value::from(m.len())),
        ("matches", [Value::String(s), Value::String(re)]) => regex_matches(re, s).map(Value::Bool).ok_or(EvalError),
        ("startsWith", [Value::String(s), Value::String(p)]) => Ok(Value::Bool(s.starts_with(p))),
        ("endsWith", [Value::String(s), Value::String(p)]) => Ok(Value::Bool(s.ends_with(p))),
        ("contains", [Value::String(s), Value::String(p)]) => Ok(Value::Bool(s.contains(p))),
        _ => Err(EvalError),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Equality with numbers compared by value (`1 == 1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn negate(n: &Number) -> Eval {
    if let Some(i) = n.as_i64() {
        return i.checked_neg().map(Value::from).ok_or(EvalError);
    }
    n.as_f64().and_then(|f| Number::from_f64(-f)).map(Value::Number).ok_or(EvalError)
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Eval {
    use std::cmp::Ordering;
    let order = || -> Result<Ordering, EvalError> {
        match (a, b) {
            (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
            (Value::Number(_), Value::Number(_)) => {
                let (x, y) = (as_f64(a).ok_or(EvalError)?, as_f64(b).ok_or(EvalError)?);
                x.partial_cmp(&y).ok_or(EvalError)
            }
            _ => Err(EvalError),
        }
    };
    let arithmetic = |int: fn(i64, i64) -> Option<i64>, float: fn(f64, f64) -> f64| -> Eval {
        match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) if !(a.is_f64() || b.is_f64()) => int(x, y).map(Value::from).ok_or(EvalError),
            _ => {
                let (x, y) = (as_f64(a).ok_or(EvalError)?, as_f64(b).ok_or(EvalError)?);
                Number::from_f64(float(x, y)).map(Value::Number).ok_or(EvalError)
            }
        }
    };
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(a, b))),
        BinOp::Ne => Ok(Value::Bool(!equal(a, b))),
        BinOp::Lt => order().map(|o| Value::Bool(o == Ordering::Less)),
        BinOp::Le => order().map(|o| Value::Bool(o != Ordering::Greater)),
        BinOp::Gt => order().map(|o| Value::Bool(o == Ordering::Greater)),
        BinOp::Ge => order().map(|o| Value::Bool(o != Ordering::Less)),
        BinOp::In => match b {
            Value::Array(items) => Ok(Value::Bool(items.iter().any(|i| equal(i, a)))),
            Value::Object(map) => match a {
                Value::String(key) => Ok(Value::Bool(map.contains_key(key))),
                _ => Err(EvalError),
            },
            _ => Err(EvalError),
        },
        BinOp::Add => match (a, b) {
            (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
            (Value::Array(x), Value::Array(y)) => Ok(Value::Array(x.iter().chain(y).cloned().collect())),
            (Value::Number(_), Value::Number(_)) => arithmetic(i64::checked_add, |x, y| x + y),
            _ => Err(EvalError),
        },
        BinOp::Sub => arithmetic(i64::checked_sub, |x, y| x - y),
        BinOp::Mul => arithmetic(i64::checked_mul, |x, y| x * y),
        BinOp::Div => arithmetic(i64::checked_div, |x, y| x / y),
        BinOp::Rem => arithmetic(i64::checked_rem, |x, y| x % y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &str, self_value: Value, old: Option<Value>) -> Option<bool> {
        compile(rule)?.check(&self_value, old.as_ref())
    }

    #[test]
    fn transition_rules() {
        assert_eq!(check("self == oldSelf", json!([1]), Some(json!([1]))), Some(true));
        assert_eq!(check("self == oldSelf", json!([2]), Some(json!([1]))), Some(false));
        let rule = "oldSelf == \"\" || self == oldSelf";
        assert_eq!(check(rule, json!("b"), Some(json!(""))), Some(true));
        assert_eq!(check(rule, json!("b"), Some(json!("a"))), Some(false));
        assert!(compile("self == oldSelf").is_some_and(|r| r.uses_old_self));
    }

    #[test]
    fn arch_rule_for_kubevirt() {
        let rule = "self.arch != 'arm64' || has(self.platform.aws) || has(self.platform.azure) \
                    || has(self.platform.agent) || self.platform.type == 'GCP' \
                    || self.platform.type == 'None'";
        let spec = |arch: &str| json!({"arch": arch, "platform": {"type": "KubeVirt", "kubevirt": {}}});
        assert_eq!(check(rule, spec("arm64"), None), Some(false));
        assert_eq!(check(rule, spec("amd64"), None), Some(true));
    }

    #[test]
    fn macros_strings_and_regexes() {
        let services = json!({"platform": {"type": "KubeVirt"}, "services": [
            {"service": "OAuthServer", "servicePublishingStrategy": {"type": "Route"}}
        ]});
        let rule = "self.platform.type == 'IBMCloud' ? size(self.services) >= 3 : size(self.services) >= 4";
        assert_eq!(check(rule, services.clone(), None), Some(false));
        let exists =
            "self.services.exists(s, s.service == \"OAuthServer\" && s.servicePublishingStrategy.type == \"Route\")";
        assert_eq!(check(exists, services, None), Some(true));
        let cidr = "self.matches('^((\\\\d{1,3}\\\\.){3}\\\\d{1,3}/\\\\d{1,2})$')";
        assert_eq!(check(cidr, json!("10.0.0.0/14"), None), Some(true));
        assert_eq!(check(cidr, json!("nope"), None), Some(false));
        assert_eq!(check("self in ['1', '2', '3']", json!("2"), None), Some(true));
    }

    #[test]
    fn unsupported_rules_are_skipped() {
        assert!(compile("self.?azure.orValue(\"\") == \"\"").is_none());
        assert_eq!(check("isURL(self)", json!("https://x"), None), None);
        assert_eq!(check("self.missing == 1", json!({}), None), None);
        assert_eq!(check("has(self.missing) || self.missing == 1", json!({}), None), None);
        assert_eq!(check("!has(self.missing) || self.missing == 1", json!({}), None), Some(true));
    }
}
