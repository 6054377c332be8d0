"""Reading corpora into canonical rows, fingerprinting them, cleaning, labeled budgets and augmentation."""
