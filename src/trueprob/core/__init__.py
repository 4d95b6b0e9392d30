"""Pure math on arrays of any array-API namespace. No validation happens here."""
