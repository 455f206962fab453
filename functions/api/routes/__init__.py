"""The api's routes, one Powertools ``Router`` per group; ``app.py`` includes them."""
