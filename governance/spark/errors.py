"""What went wrong in Spark, in one line a person can act on.

A Java exception reaches Python as ``Py4JJavaError``, whose first line only names the Java method that was called
("An error occurred while calling o42.getFileSystem."); the reason is in the Java exception and its root cause
(a missing S3A class, a refused credential, an unknown host), so that is what an error message shows.
"""

from __future__ import annotations

MAX_CAUSES = 20
S3A_HINT = ("s3:// locations need Hadoop's S3A jars on Spark's class path: set MODELGOV_SPARK_JARS (see the "
            "README, Batch scoring on Spark)")
HINTS = {"org.apache.hadoop.fs.s3a.S3AFileSystem not found": S3A_HINT, 'No FileSystem for scheme "s3a"': S3A_HINT}


def error_reason(exc: BaseException, limit: int = 2000) -> str:
    """``exc`` in one line: for a Java exception, its class and message and those of its root cause."""
    java = getattr(exc, "java_exception", None)
    text = ""
    if java is not None:
        try:
            text = str(java.toString())
            root, cause = None, java.getCause()
            for _ in range(MAX_CAUSES):
                if cause is None:
                    break
                root, cause = cause, cause.getCause()
            if root is not None and str(root.toString()) not in text:
                text += f" (caused by {root.toString()})"
        except Exception:  # noqa: BLE001 - the JVM is gone: Python's own text of the error is what is left
            text = ""
    text = (text or str(exc)).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    hints = sorted({hint for marker, hint in HINTS.items() if marker in line})
    return line[:limit] + "".join(f"; {hint}" for hint in hints)
