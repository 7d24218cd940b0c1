"""The access tests read notices with (each read is a consultation in the audit log)."""

from broker.sinks.audit import Access

#: operator and purpose of the tests' reads of a notice's view
READ = Access("test", "test")
