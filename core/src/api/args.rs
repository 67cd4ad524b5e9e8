//! What callers pass as arguments: values or `ObjectRef`s.

use raya_common::{Object, Value};
use raya_scheduler::TaskArg;

use crate::api::object::ObjectRef;

/// Something that can be passed as an argument of type `T` to a remote function, actor
/// constructor or method: a `T` itself (passed by value, never serialized on this node) or an
/// [`ObjectRef<T>`] (the task waits for the object and receives its value).
///
/// ```no_run
/// # #[raya::remote] fn square(x: i64) -> i64 { x * x }
/// let four = raya::put(4i64).unwrap();
/// let a = square::remote(3);        // by value
/// let b = square::remote(&four);    // by reference: runs when `four` is ready
/// let c = square::remote(a);        // chained: runs after the first task
/// # let _ = (b, c);
/// ```
pub trait IntoArg<T> {
    /// The argument in the form tasks carry it.
    fn into_arg(self) -> TaskArg;
}

impl<T: Object + Clone> IntoArg<T> for T {
    fn into_arg(self) -> TaskArg {
        TaskArg::Value(Value::new(self))
    }
}

impl<T> IntoArg<T> for ObjectRef<T> {
    fn into_arg(self) -> TaskArg {
        TaskArg::Ref(self.into_raw())
    }
}

impl<T> IntoArg<T> for &ObjectRef<T> {
    fn into_arg(self) -> TaskArg {
        TaskArg::Ref(self.raw().clone())
    }
}

impl IntoArg<String> for &str {
    fn into_arg(self) -> TaskArg {
        TaskArg::Value(Value::new(self.to_string()))
    }
}
