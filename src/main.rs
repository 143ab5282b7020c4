//! The `cl-maint` binary: all the work is in the library's [`cl_maint::run`].

fn main() {
    std::process::exit(cl_maint::run(std::env::args_os()));
}
