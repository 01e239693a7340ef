"""Domains that generated tasks are re-skinned into: column names, class names, words.

The names carry no information about the hidden rule: which column matters, and how, is drawn by the
generator independently of the name (SandMLE's strategist "re-assigns the domain" the same way).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """One domain: what a row is, its column vocabulary and its targets."""

    name: str
    entity: str  # what one row describes
    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    value_target: str  # a regression target
    label_target: str  # a classification target
    classes: tuple[str, ...]  # class names for multiclass targets
    words: tuple[str, ...]  # topic words for text inputs


DOMAINS: tuple[Domain, ...] = (
    Domain("greenhouse crops", "a greenhouse bed", ("soil_moisture", "leaf_area", "light_hours", "night_temp",
           "day_temp", "nitrogen_ppm", "potassium_ppm", "ph_level", "irrigation_l", "co2_ppm", "plant_density",
           "bed_age_days"), (("cultivar", ("amber", "basil", "coral", "dune", "ember")),
           ("substrate", ("peat", "coir", "rockwool")), ("bay", ("north", "south", "east", "west"))),
           "yield_kg", "blight", ("seedling", "vegetative", "budding", "flowering", "fruiting", "senescent"),
           ("leaf", "stem", "bloom", "root", "spot", "wilt", "water", "sun", "shade", "soil", "pest", "mildew")),
    Domain("harbour logistics", "a container shipment", ("dwell_hours", "gross_tonnes", "crane_moves",
           "berth_queue", "wind_knots", "tide_m", "reefer_units", "customs_checks", "distance_nm", "draft_m",
           "pilot_wait_min", "teu_count"), (("carrier", ("atlas", "borea", "cygnus", "delta")),
           ("terminal", ("T1", "T2", "T3")), ("cargo", ("bulk", "reefer", "dry", "hazmat"))),
           "delay_hours", "rerouted", ("on_time", "minor_delay", "major_delay", "held", "split", "transferred"),
           ("berth", "crane", "manifest", "customs", "storm", "queue", "seal", "reefer", "pilot", "tug", "dock",
            "cargo")),
    Domain("municipal water", "a pipe segment", ("pressure_bar", "flow_lps", "pipe_age_y", "diameter_mm",
           "depth_m", "chlorine_mgl", "turbidity_ntu", "soil_corrosivity", "traffic_load", "repairs_5y",
           "elevation_m", "temp_c"), (("material", ("cast_iron", "pvc", "ductile", "steel")),
           ("district", ("old_town", "harbor", "hills", "plains", "uptown")), ("coating", ("none", "epoxy"))),
           "leak_litres", "burst", ("intact", "weeping", "cracked", "corroded", "collapsed", "replaced"),
           ("valve", "main", "leak", "meter", "hydrant", "pump", "pressure", "flow", "joint", "crack", "rust",
            "seal")),
    Domain("bicycle rentals", "a rental station-day", ("temp_c", "humidity", "wind_kmh", "docks_free",
           "events_nearby", "transit_delays", "hours_daylight", "rain_mm", "tourist_index", "price_per_min",
           "station_age", "elevation_m"), (("zone", ("center", "campus", "riverside", "suburb")),
           ("weekday", ("mon", "tue", "wed", "thu", "fri", "sat", "sun")), ("bike_type", ("classic", "ebike"))),
           "rides", "sold_out", ("quiet", "steady", "busy", "peak", "overflow", "closed"),
           ("dock", "ride", "helmet", "lane", "rain", "hill", "commute", "tour", "battery", "chain", "park",
            "bridge")),
    Domain("library circulation", "a catalogue title", ("pages", "age_years", "holds", "copies",
           "reviews", "avg_rating", "checkout_days", "renewals", "branch_count", "price_eur", "awards",
           "series_index"), (("format", ("hardcover", "paperback", "audio", "ebook")),
           ("shelf", ("fiction", "history", "science", "children", "travel")), ("language", ("en", "fr", "de"))),
           "checkouts", "weeded", ("archive", "low", "steady", "popular", "bestseller", "classic"),
           ("chapter", "plot", "author", "shelf", "novel", "cover", "index", "series", "map", "poem", "story",
            "essay")),
    Domain("solar farms", "an inverter-hour", ("irradiance", "panel_temp", "ambient_temp", "cloud_cover",
           "dust_index", "tilt_deg", "azimuth_deg", "string_voltage", "string_current", "panel_age_y",
           "wind_ms", "humidity"), (("panel_model", ("p100", "p200", "p300", "p400")),
           ("site", ("mesa", "valley", "ridge")), ("cleaning", ("weekly", "monthly", "none"))),
           "output_kwh", "fault", ("nominal", "soiled", "shaded", "degraded", "tripped", "offline"),
           ("panel", "sun", "cloud", "dust", "string", "inverter", "grid", "heat", "wire", "fuse", "shade",
            "tilt")),
    Domain("veterinary clinic", "a patient visit", ("weight_kg", "age_months", "heart_rate", "temp_c",
           "resp_rate", "hydration", "visits_last_year", "vaccines", "wait_min", "bloodwork_score",
           "appetite_score", "activity_score"), (("species", ("canine", "feline", "lapine", "avian")),
           ("clinic", ("east", "west", "central")), ("insured", ("yes", "no"))),
           "bill_eur", "readmitted", ("routine", "dental", "injury", "infection", "chronic", "emergency"),
           ("paw", "fur", "bark", "cough", "limp", "itch", "fever", "appetite", "vaccine", "tooth", "ear",
            "eye")),
    Domain("coffee roastery", "a roast batch", ("bean_moisture", "roast_min", "drop_temp", "charge_temp",
           "airflow", "batch_kg", "first_crack_min", "development_pct", "altitude_m", "density",
           "bean_age_days", "ambient_humidity"), (("origin", ("andes", "rift", "sumatra", "yunnan", "kona")),
           ("process", ("washed", "natural", "honey")), ("roaster", ("drum_a", "drum_b"))),
           "cupping_score", "rejected", ("light", "cinnamon", "city", "full_city", "vienna", "french"),
           ("aroma", "acid", "body", "sweet", "bitter", "fruit", "nut", "choc", "floral", "smoke", "crema",
            "bean")),
    Domain("wind turbines", "a turbine-day", ("wind_ms", "gust_ms", "rotor_rpm", "gearbox_temp",
           "oil_pressure", "vibration", "blade_pitch", "nacelle_temp", "yaw_error", "hours_since_service",
           "ice_index", "grid_freq"), (("model", ("wt2", "wt3", "wt5")), ("farm", ("coast", "plateau", "offshore")),
           ("tower", ("steel", "hybrid", "concrete"))),
           "energy_mwh", "alarm", ("normal", "curtailed", "iced", "overheated", "stopped", "serviced"),
           ("blade", "rotor", "gear", "oil", "gust", "yaw", "brake", "pitch", "ice", "grid", "tower", "bolt")),
    Domain("museum visits", "a gallery-day", ("visitors_prev", "temp_c", "school_groups", "exhibits_open",
           "ticket_price", "reviews", "events", "rain_mm", "guides", "audio_rentals", "cafe_sales",
           "parking_free"), (("wing", ("modern", "ancient", "natural", "science")),
           ("season", ("winter", "spring", "summer", "autumn")), ("membership", ("open", "members"))),
           "attendance", "crowded", ("empty", "calm", "lively", "busy", "packed", "closed"),
           ("statue", "canvas", "fossil", "guide", "ticket", "hall", "exhibit", "tour", "relic", "sculpt",
            "print", "mosaic")),
)

NEUTRAL_WORDS = ("the", "a", "today", "report", "noted", "team", "check", "again", "after", "before",
                 "with", "some", "very", "still", "just", "more", "less", "new", "old", "it")
