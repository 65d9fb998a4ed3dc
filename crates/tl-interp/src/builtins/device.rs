//! Device builtins beside `to_device` and `to_host` (in `host`): `device`.

use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "device",
    signature: "device(x: tensor) -> string",
    category: "host",
    doc: "Where `x` lives: \"cpu\" or \"cuda:N\". Host metadata only: never waits on the \
              device. Errors: an argument that is not a tensor, a count other than 1.",
    func: device_of,
}];

fn device_of(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(1, 1)?;
    Ok(Value::str(args.tensor(0)?.device().to_string()))
}
