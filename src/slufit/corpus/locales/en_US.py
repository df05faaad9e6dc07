"""English (en-US) templates and fillers for the embedded corpus.

Every locale module has the same intents (in the same order, with the same
slot types at each template position) and the same filler types, as MASSIVE's
locales are parallel. `{type}` marks a slot; a type may appear twice in one
template (two different fillers are drawn). Position in a list matters: see
`slufit.corpus.generator` for which templates and fillers are held out of the
test set and which out of pretraining.
"""

TEMPLATES: dict[str, list[str]] = {
    "alarm_set": [
        "wake me up at {time} {date}",
        "set an alarm for {time}",
        "i need an alarm {date} at {time}",
        "alarm at {time} please",
        "set an alarm for the {timeofday}",
    ],
    "alarm_query": [
        "what alarms do i have {date}",
        "is my alarm set for {time}",
        "when is my next alarm",
        "show me my alarms for {date}",
        "did i set an alarm for the {timeofday}",
    ],
    "alarm_remove": [
        "cancel my alarm for {time}",
        "remove the alarm {date}",
        "delete all my alarms",
        "turn off the {time} alarm",
        "i do not need the alarm {date} {timeofday}",
    ],
    "weather_query": [
        "what is the weather like {date}",
        "will there be {weather_descriptor} in {place_name} {date}",
        "is {weather_descriptor} expected {timeofday}",
        "weather in {place_name} please",
        "do i need an umbrella {date}",
    ],
    "play_music": [
        "play {song_name} by {artist_name}",
        "play some {artist_name}",
        "i want to hear {song_name}",
        "put on music by {artist_name}",
        "play {artist_name} in the {house_place}",
    ],
    "play_radio": [
        "play {radio_name}",
        "tune in to {radio_name}",
        "turn on the radio",
        "put on {radio_name} in the {house_place}",
        "switch to {radio_name}",
    ],
    "calendar_set": [
        "add {event_name} to my calendar {date}",
        "schedule a {event_name} at {time}",
        "remind me about the {event_name} {date}",
        "book a {event_name} with {person} {date}",
        "schedule {event_name} {date} at {time}",
    ],
    "calendar_query": [
        "what is on my calendar {date}",
        "when is my {event_name}",
        "do i have anything {date} {timeofday}",
        "am i free {date} at {time}",
        "is {person} coming to the {event_name}",
    ],
    "calendar_remove": [
        "cancel my {event_name}",
        "remove the {event_name} from my calendar",
        "delete everything on my calendar {date}",
        "clear my calendar {date} {timeofday}",
        "cancel the meeting with {person}",
    ],
    "iot_hue_lightoff": [
        "turn off the lights in the {house_place}",
        "switch the {house_place} lights off",
        "lights off please",
        "turn the lights off {timeofday}",
        "no more light in the {house_place}",
    ],
    "iot_hue_lighton": [
        "turn on the lights in the {house_place}",
        "switch the {house_place} lights on",
        "lights on please",
        "i need some light in the {house_place}",
    ],
    "iot_hue_lightchange": [
        "change the lights to {color_type}",
        "make the {house_place} lights {color_type}",
        "set the lights to {color_type} in the {house_place}",
        "i want {color_type} light",
        "turn the lights {color_type}",
    ],
    "iot_cleaning": [
        "start the {device_type}",
        "clean the {house_place} with the {device_type}",
        "vacuum the {house_place}",
        "turn on the {device_type} {timeofday}",
        "the {house_place} floor is dirty",
    ],
    "iot_coffee": [
        "make me a {coffee_type}",
        "i would like a {coffee_type} please",
        "start the coffee machine",
        "brew a {coffee_type} at {time}",
    ],
    "email_sendemail": [
        "send an email to {person}",
        "email {person} about the {event_name}",
        "write an email to {person} saying i am late",
        "send a mail to {person} {date}",
    ],
    "email_query": [
        "do i have new emails",
        "any emails from {person} {date}",
        "check my inbox",
        "did {person} answer my email",
    ],
    "datetime_query": [
        "what time is it",
        "what time is it in {place_name}",
        "what is the date {date}",
        "tell me the time in {place_name}",
    ],
    "news_query": [
        "what is the latest news about {news_topic}",
        "any news from {place_name}",
        "tell me the {news_topic} headlines",
        "what happened in {place_name} {date}",
        "read me the news",
    ],
    "transport_ticket": [
        "book a {transport_type} ticket to {place_name}",
        "a {transport_type} ticket from {place_name} to {place_name} {date}",
        "buy me a ticket to {place_name} {date}",
        "get two {transport_type} tickets for {date}",
        "{transport_type} to {place_name} {date}",  # deliberately shared with a confusable intent
    ],
    "transport_query": [
        "when is the next {transport_type} to {place_name}",
        "how long does the {transport_type} take from {place_name} to {place_name}",
        "is the {transport_type} on time",
        "what time does the {transport_type} leave {date}",
        "{transport_type} to {place_name} {date}",  # deliberately shared with a confusable intent
    ],
    "transport_traffic": [
        "how is the traffic in {place_name}",
        "is there traffic on the way to {place_name} {timeofday}",
        "are the roads busy",
        "any traffic jams {date}",
    ],
    "takeaway_order": [
        "order {food_type} from {business_name}",
        "i want {food_type} delivered at {time}",
        "get me some {food_type}",
        "order a takeaway from {business_name} {timeofday}",
        "{food_type} from {business_name}",  # deliberately shared with a confusable intent
    ],
    "takeaway_query": [
        "is {business_name} still open",
        "does {business_name} deliver {food_type}",
        "where is my {food_type} order",
        "when will my food from {business_name} arrive",
        "{food_type} from {business_name}",  # deliberately shared with a confusable intent
    ],
    "lists_createoradd": [
        "add milk to my {list_name} list",
        "create a {list_name} list",
        "put bread on the {list_name} list",
        "make a new list called {list_name}",
        "my {list_name} list",  # deliberately shared with a confusable intent
    ],
    "lists_query": [
        "what is on my {list_name} list",
        "read my {list_name} list",
        "show me all my lists",
        "is milk on the {list_name} list",
        "my {list_name} list",  # deliberately shared with a confusable intent
    ],
    "lists_remove": [
        "delete my {list_name} list",
        "remove milk from the {list_name} list",
        "clear the {list_name} list",
        "take bread off my {list_name} list",
        "my {list_name} list",  # deliberately shared with a confusable intent
    ],
    "qa_factoid": [
        "how many people live in {place_name}",
        "who is {person}",
        "how far is {place_name} from {place_name}",
        "what is {place_name} famous for",
    ],
    "social_post": [
        "post on {media_type} that i am on holiday",
        "share my photo on {media_type}",
        "complain to {business_name} on {media_type}",
        "write a post on {media_type} about {news_topic}",
    ],
    "audio_volume_up": [
        "turn the volume up",
        "louder please",
        "increase the volume in the {house_place}",
        "i can not hear the music make it louder",
        "volume in the {house_place}",  # deliberately shared with a confusable intent
    ],
    "audio_volume_down": [
        "turn the volume down",
        "quieter please",
        "lower the volume in the {house_place}",
        "the music is too loud",
        "volume in the {house_place}",  # deliberately shared with a confusable intent
    ],
    "audio_volume_mute": [
        "mute the speakers",
        "be quiet",
        "mute everything until {time}",
        "silence please",
    ],
    "recommendation_events": [
        "what events are on in {place_name} {date}",
        "is there anything fun to do {date} {timeofday}",
        "recommend a concert in {place_name}",
        "any good events near me {date}",
    ],
    "cooking_recipe": [
        "how do i cook {food_type}",
        "give me a recipe for {food_type}",
        "what can i make for dinner",
        "how long should i bake the {food_type}",
    ],
    "general_joke": [
        "tell me a joke",
        "make me laugh",
        "do you know a funny joke",
        "say something funny",
    ],
}

FILLERS: dict[str, list[str]] = {
    "date": ["today", "tomorrow", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
            "this weekend", "next week", "the fifth of may", "the first of june", "next monday",
            "the tenth of july", "next friday", "the third of march", "christmas day"],
    "time": ["seven am", "six thirty", "eight pm", "noon", "midnight", "nine fifteen", "ten o'clock",
            "five thirty pm", "quarter past four", "eleven am", "two pm", "half past six", "nine pm", "six am",
            "three pm", "eight thirty", "four am", "seven forty five"],
    "timeofday": ["morning", "afternoon", "evening", "night", "tonight", "lunchtime", "early morning",
                 "late evening", "midday", "dusk", "late night", "mid morning"],
    "place_name": ["london", "paris", "new york", "berlin", "madrid", "tokyo", "boston", "rome", "chicago",
                  "lisbon", "vienna", "dublin", "seville", "munich", "amsterdam", "prague", "sydney", "oslo"],
    "person": ["john", "mary", "my mom", "sarah", "david", "anna", "peter", "lucy", "my boss", "tom", "emma",
              "carlos", "my brother", "julia", "my sister", "mike", "sophie", "my dad"],
    "event_name": ["dentist appointment", "team meeting", "birthday party", "yoga class", "doctor appointment",
                  "lunch with friends", "piano lesson", "football practice", "job interview", "book club",
                  "haircut", "conference call", "parent evening", "team lunch", "board meeting",
                  "guitar lesson"],
    "device_type": ["vacuum cleaner", "robot vacuum", "roomba", "hoover", "floor cleaner", "mop robot",
                   "robot cleaner", "window robot", "steam mop", "carpet cleaner", "pool robot", "lawn robot"],
    "color_type": ["red", "blue", "green", "yellow", "purple", "orange", "pink", "white", "warm white",
                  "turquoise", "gold", "soft blue", "dark red", "light green", "violet", "amber"],
    "house_place": ["kitchen", "bedroom", "living room", "bathroom", "hallway", "office", "garage",
                   "dining room", "basement", "kids room", "garden", "attic", "hall", "laundry room", "patio",
                   "guest room"],
    "artist_name": ["adele", "coldplay", "queen", "madonna", "the beatles", "shakira", "elvis", "beyonce",
                   "abba", "mozart", "bob marley", "taylor swift", "rihanna", "elton john", "drake", "bach"],
    "song_name": ["yesterday", "hello", "imagine", "thriller", "let it be", "bohemian rhapsody", "halo",
                 "yellow submarine", "hey jude", "waterloo", "hotel california", "purple rain",
                 "dancing queen", "roar", "wonderwall", "africa"],
    "radio_name": ["bbc radio one", "jazz fm", "classic fm", "kiss fm", "capital fm", "radio two",
                  "heart radio", "npr", "magic radio", "radio x", "lbc", "absolute radio", "smooth radio",
                  "bbc radio four"],
    "news_topic": ["sports", "politics", "technology", "science", "business", "the economy", "football",
                  "the elections", "health", "the stock market", "climate change", "music", "the weather",
                  "the royal family", "tennis", "the war"],
    "food_type": ["pizza", "sushi", "noodles", "burgers", "curry", "tacos", "salad", "fried chicken", "pasta",
                 "kebab", "dumplings", "ramen", "paella", "fish and chips", "falafel", "pad thai"],
    "list_name": ["shopping", "groceries", "to do", "packing", "chores", "gift", "reading", "holiday",
                 "birthday", "work", "movies", "wish", "recipe", "baby", "camping", "party"],
    "transport_type": ["train", "bus", "plane", "ferry", "subway", "tram", "coach", "night train", "boat",
                      "fast train", "airport bus", "metro"],
    "weather_descriptor": ["rain", "snow", "sunshine", "wind", "fog", "a storm", "frost", "thunder", "hail",
                          "clouds", "a heatwave", "showers", "drizzle", "sleet", "a blizzard", "mist"],
    "media_type": ["twitter", "facebook", "instagram", "linkedin", "tiktok", "reddit", "youtube", "mastodon",
                  "whatsapp", "snapchat", "pinterest", "threads"],
    "business_name": ["starbucks", "mcdonalds", "pizza hut", "tesco", "ikea", "walmart", "dominos",
                     "burger king", "amazon", "costco", "zara", "kfc", "lidl", "nandos", "costa coffee",
                     "greggs"],
    "coffee_type": ["espresso", "latte", "cappuccino", "americano", "black coffee", "mocha", "flat white",
                   "decaf", "macchiato", "iced coffee", "cortado", "irish coffee"],
}
