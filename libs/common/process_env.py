"""Environment variables a hosted server may not set: they steer loaders and interpreters.

A server's `env` is applied only inside its sandbox, but these names change what a dynamic
loader, libc or an interpreter loads or runs before the server's own code (LD_PRELOAD,
PYTHONHOME, NODE_OPTIONS, ...), or they are the sandbox's own launcher configuration. The
registry refuses them at registration (422) and the sandbox drops any that still arrive.
"""

from __future__ import annotations

from collections.abc import Iterable

# the dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...), macOS's, exported shell
# functions, and the sandbox's own launcher settings
REFUSED_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "SWITCHBOARD_")
REFUSED_NAMES = frozenset(
    {
        # glibc: the variables it ignores for setuid programs, tunables included
        "GLIBC_TUNABLES",
        "GCONV_PATH",
        "GETCONF_DIR",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "MALLOC_TRACE",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TZDIR",
        # Python: where the interpreter loads its library and packages from, code run at start
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PYTHONUSERBASE",
        "PYTHONEXECUTABLE",
        "PYTHONPLATLIBDIR",
        # Node.js
        "NODE_OPTIONS",
        "NODE_PATH",
        "NODE_REPL_EXTERNAL_MODULE",
        # shells, Perl, Ruby, the JVM
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "PERL5DB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
    }
)


def is_refused(name: str) -> bool:
    """True when a hosted server may not set the variable `name` (any case)."""
    upper = name.upper()
    return upper in REFUSED_NAMES or upper.startswith(REFUSED_PREFIXES)


def refused_names(names: Iterable[str]) -> list[str]:
    """The refused names among `names`, in order."""
    return [name for name in names if is_refused(name)]
