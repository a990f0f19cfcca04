"""Response bodies of the API, built with duck-typed ``.of(row)`` classmethods (no ORM imports)."""
