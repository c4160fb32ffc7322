"""Who is calling: the app's signed-in users (JWT) and, later, admins."""
